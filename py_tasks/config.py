"""Project paths, the currency-pair list and dbt vars: one place for configuration.

The pair list lives in the dbt seed ``seeds/currency_pairs.csv`` and the windows in
``dbt_project.yml`` vars; Python reads them from there instead of repeating them.
"""

from __future__ import annotations

import csv
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import BqxError

PAIR_RE = re.compile(r"^[a-z]{6}$")

# Column suffixes of the per-pair families (SPEC 2.2, 2.3): wW_<stat> and wW_bqx_<stat>.
REG_STATS = (
    "quadratic_term",
    "linear_term",
    "constant_term",
    "prediction",
    "residual",
    "r2",
    "rmse",
)
BQX_STATS = ("return", "max", "min", "avg", "stdev", "endpoint")


def project_dir() -> Path:
    """The dbt project root: ``BQX_PROJECT_DIR``, else the nearest parent of the
    working directory holding ``dbt_project.yml``, else the checkout this package is in."""
    env = os.environ.get("BQX_PROJECT_DIR")
    if env:
        path = Path(env).resolve()
        if not (path / "dbt_project.yml").exists():
            raise BqxError(
                f"BQX_PROJECT_DIR={env} holds no dbt_project.yml; point it at the bqx checkout"
            )
        return path
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "dbt_project.yml").exists() and (candidate / "py_tasks").is_dir():
            return candidate
    fallback = Path(__file__).resolve().parent.parent
    if (fallback / "dbt_project.yml").exists():
        return fallback
    raise BqxError(
        "cannot find the bqx project (dbt_project.yml); run bqx from the checkout or set BQX_PROJECT_DIR"
    )


def state_dir() -> Path:
    """Where the embedded database and generated profile live (``.bqx/`` in the project)."""
    return Path(os.environ.get("BQX_STATE_DIR") or project_dir() / ".bqx").resolve()


@lru_cache(maxsize=4)
def _dbt_project(path: Path) -> dict[str, Any]:
    with open(path / "dbt_project.yml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def dbt_vars() -> dict[str, Any]:
    """The ``vars:`` block of dbt_project.yml (defaults for every run)."""
    return dict(_dbt_project(project_dir()).get("vars") or {})


def dbt_folder_config(folder: str) -> dict[str, Any]:
    """The ``models:`` config of one model folder in dbt_project.yml (``+materialized``, ...)."""
    project = _dbt_project(project_dir())
    models = (project.get("models") or {}).get(project["name"]) or {}
    return dict(models.get(folder) or {})


def dbt_var(name: str) -> Any:
    vars_ = dbt_vars()
    if name not in vars_:
        raise BqxError(f"dbt var '{name}' is missing from dbt_project.yml")
    return vars_[name]


def schema() -> str:
    """The schema the models build into (``BQX_SCHEMA``, default ``bqx``)."""
    return os.environ.get("BQX_SCHEMA", "bqx")


def raw_schema() -> str:
    """The schema of the source table ``m1_bars`` (dbt var ``raw_schema``)."""
    return os.environ.get("BQX_RAW_SCHEMA") or str(dbt_vars().get("raw_schema", "raw"))


@lru_cache(maxsize=4)
def _pairs(path: Path) -> tuple[tuple[str, str, str], ...]:
    with open(path / "seeds" / "currency_pairs.csv", encoding="utf-8", newline="") as fh:
        return tuple(
            (r["pair"], r["base_currency"], r["quote_currency"]) for r in csv.DictReader(fh)
        )


def pair_rows() -> tuple[tuple[str, str, str], ...]:
    """(pair, base_currency, quote_currency) for the 28 pairs, in seed order."""
    return _pairs(project_dir())


def all_pairs() -> list[str]:
    return [p for p, _, _ in pair_rows()]


def check_pair(name: str) -> str:
    """Return the pair name if valid, else raise a BqxError listing the valid ones."""
    pair = name.strip() if name else name
    if not pair or not PAIR_RE.match(pair) or pair not in all_pairs():
        raise BqxError(
            f"unknown pair '{name}': a pair is six lower-case letters from the currency_pairs seed; "
            f"valid pairs: {' '.join(all_pairs())}"
        )
    return pair


def parse_pairs(value: str | None) -> list[str]:
    """Parse a comma/space separated ``--pairs`` value; None or 'all' means all 28."""
    if value is None or value.strip().lower() in ("", "all"):
        return all_pairs()
    names = [v for v in re.split(r"[,\s]+", value.strip()) if v]
    return [check_pair(v) for v in names]
