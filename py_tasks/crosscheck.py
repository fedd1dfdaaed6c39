"""``bqx crosscheck``: an independent recomputation of sampled rows of the built tables.

The dispatcher. Which module recomputes which family is the registry's
(py_tasks/families.py, ``reference`` = ``module:function``); this module imports those
modules by name (importlib), and none of them imports it:

* ``py_tasks.crosscheck_bars``: ``bqx``, ``reg_rate`` and ``reg_bqx``, recomputed in
  numpy from the raw bars (``raw.m1_bars``), straight from the SPEC formulas;
* ``py_tasks.crosscheck_correlation``: ``correlation_bqx``, from its inputs (the
  reg_bqx and bqx tables);
* ``py_tasks.crosscheck_technical``: ``technical`` and ``bollinger``, against TA-Lib
  and ta, from the rate_index model's bar and the stored w15_bqx_return.

Their shared machinery (result types, sampling, reading rows, accumulating and printing
the worst errors) is ``py_tasks.crosscheck_common``, which imports no family module.

Rows checked per pair and family: ``sample`` random rows (0 = every row), and
always the rows around each warm-up boundary, rows right after the largest and
some random gaps, rows where a window becomes exactly flat or stops being flat,
the first rows and the last ``tail`` rows. A NULL where a value is expected (or a
value where NULL is expected), a missing row, a row count that differs from the
bars, or an error above its tolerance is a breach. Tolerances and decisions are
documented in ``docs/crosscheck.md``.

API: ``run_crosscheck(conn, families, pairs, sample, seed) -> Report``; the
``Report`` has ``.passed``, ``.breaches()``, ``summary_text()`` and ``to_dict()``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import ModuleType
from typing import Any

import numpy as np

from .config import all_pairs, dbt_var, parse_pairs, raw_schema, schema
from .crosscheck_common import (
    DEFAULT_SAMPLE,
    DEFAULT_SEED,
    DEFAULT_TAIL,
    ColumnResult,
    FamilyResult,
    Report,
    Run,
    built_tables,
)
from .errors import BqxError
from .families import cross_checked, names

__all__ = ["ALL_FAMILIES", "ColumnResult", "FamilyResult", "Report", "register", "run",
           "run_crosscheck"]

# every family with a reference, in registry order: the --family choices
ALL_FAMILIES = names(cross_checked())


def family_modules(wanted: Sequence[str]) -> list[tuple[ModuleType, list[str]]]:
    """The modules that check the ``wanted`` families, each with its families, in
    registry order: the module of each family's ``reference``, imported by name."""
    by_module: dict[str, list[str]] = {}
    for fam in cross_checked():
        if fam.name in wanted:
            by_module.setdefault(fam.reference_module, []).append(fam.name)
    return [(importlib.import_module(module), fams) for module, fams in by_module.items()]


# ----------------------------------------------------------------------------- API
def run_crosscheck(
    conn: Any,
    families: Sequence[str] | None = None,
    pairs: Sequence[str] | None = None,
    sample: int = DEFAULT_SAMPLE,
    seed: int = DEFAULT_SEED,
    *,
    tail: int = DEFAULT_TAIL,
    base_ts: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Report:
    """Recompute sampled rows of the built per-pair tables from the raw bars.

    ``families``/``pairs``: None means every family and pair whose table is built
    (tables that are not built are listed in ``Report.skipped``). ``sample``:
    random rows per pair and family (0: every row). ``tail``: the last rows always
    checked. ``base_ts``: the rate-index base time the tables were built with
    (default: var ``rate_index_base_ts`` of dbt_project.yml).
    """
    started = time.perf_counter()
    say = progress or (lambda message: None)
    wanted_families = list(ALL_FAMILIES) if families is None else list(families)
    for fam in wanted_families:
        if fam not in ALL_FAMILIES:
            raise BqxError(f"unknown family '{fam}': choose from {', '.join(ALL_FAMILIES)}")
    wanted_pairs = all_pairs() if pairs is None else list(pairs)
    if sample < 0:
        raise BqxError(f"--sample must be 0 (every row) or more, got {sample}")
    base = str(base_ts or dbt_var("rate_index_base_ts"))
    try:
        base_np = np.datetime64(_parse_ts(base).replace(tzinfo=None), "us")
    except ValueError:
        raise BqxError(f"bad rate_index_base_ts '{base}': expected e.g. 2024-07-01 00:00:00+00"
                       ) from None
    report = Report(sample=sample, seed=seed, tail=tail, base_ts=base)
    tables = built_tables(conn)
    modules = family_modules(wanted_families)
    if any(getattr(module, "READS_RAW_BARS", True) for module, _ in modules) and \
            not conn.execute("select 1 from pg_tables where schemaname = %s "
                             "and tablename = 'm1_bars'", (raw_schema(),)).fetchone():
        raise BqxError(f"table {raw_schema()}.m1_bars does not exist: the cross-check recomputes "
                       "from the raw bars; load them with `bqx load` or `bqx sample`")
    run = Run(conn=conn, pairs=wanted_pairs, explicit_pairs=pairs is not None, sample=sample,
              seed=seed, tail=tail, base_ts=base_np, tables=tables, report=report, say=say)
    for module, fams in modules:
        report.families.update(module.check(run, fams))
    if not report.families:
        raise BqxError(
            f"nothing to cross-check: no table "
            f"{' or '.join(f + '_<pair>' for f in wanted_families)} "
            f"for {'the given pairs' if pairs is not None else 'any pair'} in schema "
            f"{schema()}; build them first, e.g. `bqx dbt -- build --select reg_bqx+`")
    report.seconds = time.perf_counter() - started
    return report



def _parse_ts(text: str) -> datetime:
    value = text.strip().replace(" ", "T", 1)
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if re.search(r"[+-]\d\d$", value):
        value += ":00"
    stamp = datetime.fromisoformat(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc)


# ----------------------------------------------------------------------------- CLI
def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "crosscheck",
        help="recompute sampled rows of the built tables in numpy from the raw bars; "
        "non-zero exit on a breach",
        description="Independent numpy cross-check of bqx_{pair}, reg_rate_{pair} and "
        "reg_bqx_{pair}: reads each pair's bars from raw.m1_bars, recomputes the rate "
        "index, momentum and numpy.polyfit regressions, and compares sampled rows "
        "(random rows plus warm-up boundaries, gaps, flat windows and the last rows) "
        "against the tables; correlation_bqx_{pair} from the stored reg_bqx and bqx "
        "tables; technical_{pair} and bollinger_{pair} against TA-Lib and ta, fed the "
        "stored rate_index bar and w15_bqx_return. Tolerances: docs/crosscheck.md.",
    )
    parser.add_argument("--family", default=None,
                        help=f"comma-separated families (default: those built of "
                        f"{','.join(ALL_FAMILIES)})")
    parser.add_argument("--pairs", default=None, help="comma-separated pairs (default: all built)")
    parser.add_argument("--sample", default=str(DEFAULT_SAMPLE),
                        help=f"random rows per pair and family, or 'all' (or 0) for every "
                        f"row (default {DEFAULT_SAMPLE})")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"random seed of the sample (default {DEFAULT_SEED})")
    parser.add_argument("--tail", type=int, default=DEFAULT_TAIL,
                        help=f"last rows always checked (default {DEFAULT_TAIL})")
    parser.add_argument("--base-ts", default=None,
                        help="rate_index_base_ts the tables were built with "
                        "(default: the dbt_project.yml var)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the report as JSON to FILE ('-' for stdout)")
    parser.add_argument("--verbose", action="store_true", help="show every column")
    parser.set_defaults(func=run)


def _parse_families(value: str | None) -> list[str] | None:
    if value is None or value.strip().lower() in ("", "all"):
        return None
    names = [v for v in re.split(r"[,\s]+", value.strip()) if v]
    for name in names:
        if name not in ALL_FAMILIES:
            raise BqxError(f"unknown family '{name}': choose from {', '.join(ALL_FAMILIES)}")
    return names


def _parse_sample(value: str) -> int:
    if value.strip().lower() == "all":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise BqxError(f"--sample must be a number of rows or 'all', got '{value}'") from None
    if number < 0:
        raise BqxError(f"--sample must be a number of rows (0 or 'all': every row), got {number}")
    return number


def run(args: argparse.Namespace) -> int:
    from . import db

    families = _parse_families(args.family)
    pairs = None if args.pairs is None else parse_pairs(args.pairs)
    sample = _parse_sample(args.sample)
    if args.tail < 0:
        raise BqxError(f"--tail must be 0 or more, got {args.tail}")

    def say(message: str) -> None:
        print(f"bqx crosscheck: {message}", file=sys.stderr, flush=True)

    with db.connect() as conn:
        report = run_crosscheck(conn, families, pairs, sample, args.seed, tail=args.tail,
                                base_ts=args.base_ts, progress=say)
    print(report.summary_text(verbose=args.verbose), flush=True)
    if args.json:
        text = json.dumps(report.to_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
    if not report.passed:
        breaches = report.breaches()
        more = f" (and {len(breaches) - 1} more, listed above)" if len(breaches) > 1 else ""
        raise BqxError(f"cross-check FAILED: {breaches[0]}{more}")
    return 0
