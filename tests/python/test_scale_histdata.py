"""Real bars, every row (``make test-scale`` only).

Two months of HistData (October-November 2017) of three pairs from
``../shared/data/histdata-2017/`` (or ``$BQX_HISTDATA_DIR``) go through ``bqx load``, ``dbt build`` (the
per-pair families and their dbt tests) and ``bqx crosscheck --sample all``: every
row of every per-pair family against its reference. Skipped, with the path in the
message, where the files are not there (they are not part of the repository).
correlation_bqx needs all 28 pairs and is left to the bench (docs/crosscheck.md).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from dbt_vars_target import run_dbt

from py_tasks import db
from py_tasks.cli import main
from py_tasks.crosscheck import run_crosscheck

# the steering checkout's shared data beside the repository, or BQX_HISTDATA_DIR
HISTDATA = Path(os.environ.get("BQX_HISTDATA_DIR") or
                Path(__file__).resolve().parents[3] / "shared" / "data" / "histdata-2017")
PAIRS = ["eurusd", "usdjpy", "gbpjpy"]
MONTHS = ["201710", "201711"]
FAMILIES = ["bqx", "reg_rate", "reg_bqx", "technical", "bollinger"]

pytestmark = pytest.mark.scale


def _files() -> list[Path]:
    return [HISTDATA / f"DAT_ASCII_{p.upper()}_M1_{m}.csv.gz" for p in PAIRS for m in MONTHS]


def test_histdata_every_row_of_every_per_pair_family(bqx_env: str) -> None:
    files = _files()
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        pytest.skip(f"HistData files not found under {HISTDATA} (first missing: {missing[0]})")
    timings = {}
    t0 = time.perf_counter()
    assert main(["load", *map(str, files)]) == 0
    timings["load"] = time.perf_counter() - t0
    select = " ".join(f"+{fam}_{p}" for p in PAIRS for fam in FAMILIES if fam != "bqx")
    t0 = time.perf_counter()
    result = run_dbt(["build", "--select", select, "--exclude", "test_type:singular"], bqx_env)
    timings["dbt build"] = time.perf_counter() - t0
    assert result.success, result.exception
    t0 = time.perf_counter()
    with db.connect(bqx_env) as conn:
        report = run_crosscheck(conn, FAMILIES, PAIRS, sample=0, seed=1)
    timings["cross-check"] = time.perf_counter() - t0
    print("HistData: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print(report.summary_text())
    for name, fam in report.families.items():
        print(f"{name}: rows checked {fam.rows_checked}, largest ratio by tenth "
              f"{[f'{r:.2g}' for r in fam.ratio_by_decile]}")
    assert report.passed, report.summary_text() if hasattr(report, "summary_text") else report
    assert set(report.families) == set(FAMILIES)
    for name, fam in report.families.items():
        assert fam.rows_checked > 100_000, name
