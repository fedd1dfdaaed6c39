"""sqlfluff (templater dbt, dialect postgres) on the models and, through them, the macros.

The dbt templater compiles the project, which needs a database connection: the
session's PostgreSQL. Generated per-pair models are byte-for-byte their family's
template (`bqx codegen --check`), so one instance per family stands for all 28.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from py_tasks import db

PROJECT = Path(__file__).resolve().parents[2]
HAND_WRITTEN = ["models/staging", "models/rate_index"]
ONE_PER_FAMILY = [
    "models/bqx/bqx_eurusd.sql",
    "models/reg_rate/reg_rate_eurusd.sql",
    "models/reg_bqx/reg_bqx_eurusd.sql",
]


@pytest.mark.slow
def test_sqlfluff_lint(fresh_db: str, tmp_path: Path) -> None:
    env = dict(os.environ)
    env.update(db.dbt_env(fresh_db))
    state = tmp_path / "state"
    env["BQX_STATE_DIR"] = str(state)
    env["DBT_PROFILES_DIR"] = str(state)
    env["DBT_TARGET_PATH"] = str(tmp_path / "target")
    env["DBT_LOG_PATH"] = str(tmp_path / "logs")
    env["BQX_PROJECT_DIR"] = str(PROJECT)
    subprocess.run(
        [sys.executable, "-c", "from py_tasks import db; db.write_profile()"], env=env, check=True
    )
    paths = [p for p in HAND_WRITTEN + ONE_PER_FAMILY + optional_paths() if (PROJECT / p).exists()]
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "sqlfluff"),
            "lint",
            *paths,
            "--templater",
            "dbt",
            "--dialect",
            "postgres",
            "--disable-progress-bar",
            # the compiled technical and correlation models are long: lint the files on
            # both cores (64 s instead of 93 s on the 2-core machine)
            "--processes",
            "2",
        ],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]


def optional_paths() -> list[str]:
    return [
        "models/correlation_bqx/correlation_bqx_eurusd.sql",
        "models/technical/technical_eurusd.sql",
        "models/bollinger/bollinger_eurusd.sql",
    ]
