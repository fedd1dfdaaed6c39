"""``bqx bench``: figures and ratios on one data set, in one run.

On a fresh database (``bqx_bench_*`` on the selected server, dropped afterwards)
holding D days of synthetic bars for the 28 pairs (or HistData files given with
``--files``), it times:

(a)  ``dbt run`` of reg_rate + reg_bqx for all pairs into new tables, as (c) writes
     them (dbt threads), and (a') the same run over the existing tables (dbt's full
     refresh then also swaps and drops the old tables);
(b1) the original system's method: ``numpy.polyfit`` per row and window, timed on
     a sample of rows and scaled to all rows;
(b2) the best out-of-database alternative: COPY the series out, every window with
     vectorised numpy (cumulative sums), COPY the results back;
(c)  the write floor: CREATE TABLE AS of the same rows and float columns holding
     constants, with the same parallelism; and (c') the same constants built by dbt as
     the same per-pair models (the families' materialisation, unique key and index),
     which splits (a)/(c) into dbt's per-model cost and the computation's;
(q)  one model's query against its lag() reads alone and its rows as constants;
(d)  the build with only W = 60 against only W = 630;
(e)  dbt test of the built families (the validation stage);
(f)  ``dbt run`` of correlation_bqx (time per row);
(g)  correlation_bqx with only the shortest against only the longest covariance window;
(t)  ``dbt run`` of technical and of bollinger (time per row), each against reg_rate
     alone in the same run (its time per row), and (t2) their out-of-database peer:
     COPY the bars out, TA-Lib and ``ta`` in Python (the cross-check's reference
     functions), COPY the results back into a table;
and the ratios. ``bqx bench --export`` instead measures the export of the
selected database's features (e.g. after ``bqx demo``) next to the COPY floor.
Timings are wall-clock on a shared machine: compare ratios within
one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from . import db, families
from .config import (
    REG_STATS,
    all_pairs,
    dbt_folder_config,
    dbt_var,
    parse_pairs,
    project_dir,
    raw_schema,
    schema,
)
from .errors import BqxError

PG_EPOCH_US = 946_684_800_000_000

# The families the bench times, asked of the registry by flag: the regression families
# of (a) to (e) (reg_rate, reg_bqx), the per-pair families upstream of them (bqx, built
# untimed), the baseline of (q) and (t) (reg_rate) and the cross-pair family of (f), (g)
# (correlation_bqx).
REG_FAMILIES = families.names(families.with_flag(families.REGRESSION))
REG_UPSTREAM = tuple(
    up for up in dict.fromkeys(u for f in REG_FAMILIES for u in families.upstream_closure(f))
    if families.get(up).grain == families.PER_PAIR and up not in REG_FAMILIES
)
BASELINE = families.one_with_flag(families.BENCH_BASELINE).name
CROSS_PAIR = families.one_with_flag(families.CROSS_PAIR).name


def _say(message: str) -> None:
    print(f"bqx bench: {message}", flush=True)


@contextmanager
def bench_database(keep: bool = False):
    """A new database on the selected server; dropped at the end unless ``keep``."""
    import psycopg

    admin = db.database_url(start=True)
    name = f"bqx_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'create database "{name}"')
    except psycopg.Error as exc:
        raise BqxError(
            f"bqx bench needs to create a database on {db.redact(admin)}: {exc}"
        ) from None
    url = db.with_dbname(admin, name)
    try:
        yield url
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')
        else:
            _say(f"kept database {name}")


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def _dbt(url: str, args: list[str]) -> float:
    """Run dbt; return the wall span of its nodes' execution (first start to last end),
    which leaves out dbt's start-up and parsing."""
    from .dbtcmd import run_dbt

    result = run_dbt(args, url)
    if not result.success:
        raise BqxError(
            f"dbt {' '.join(args)} failed during the benchmark: {result.exception or 'see output'}"
        )
    starts, ends = [], []
    for node in result.result or []:
        for phase in node.timing:
            if phase.name == "execute" and phase.started_at and phase.completed_at:
                starts.append(phase.started_at)
                ends.append(phase.completed_at)
    return (max(ends) - min(starts)).total_seconds() if starts else 0.0


def _family_rows(url: str, families: list[str], pairs: list[str]) -> int:
    with db.connect(url) as conn:
        return sum(
            conn.execute(f"select count(*) from bqx.{fam}_{pair}").fetchone()[0]
            for fam in families
            for pair in pairs
        )


def _threads() -> int:
    return int(os.environ.get("BQX_DBT_THREADS") or os.cpu_count() or 2)


# ----------------------------------------------------------------------------- (c) floor
def _constant_columns(n: int) -> str:
    """The select list of n float columns holding constants, shared by (c), (c') and (q)."""
    return ", ".join(f"{i}.5::double precision as c{i}" for i in range(n))


def write_floor(url: str, families: list[str], pairs: list[str], n_float_columns: int) -> float:
    """CREATE TABLE AS of the same row counts with constant float columns, one open
    connection per thread (as dbt keeps its connections)."""
    with db.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists bench_floor")
        counts = {
            (fam, pair): conn.execute(f"select count(*) from bqx.{fam}_{pair}").fetchone()[0]
            for fam in families
            for pair in pairs
        }
    cols = _constant_columns(n_float_columns)

    local = threading.local()
    opened = []

    def connect() -> None:
        local.conn = db.connect(url, autocommit=True)
        opened.append(local.conn)

    def one(key: tuple[str, str]) -> None:
        fam, pair = key
        local.conn.execute(
            f"create table bench_floor.{fam}_{pair} as select"
            f" timestamptz '2024-01-01' + i * interval '1 minute' as ts_utc, {cols}"
            f" from generate_series(1, {counts[key]}) as i"
        )

    threads = _threads()
    try:
        with ThreadPoolExecutor(threads, initializer=connect) as pool:
            # open the connections before the clock starts
            list(pool.map(lambda _: time.sleep(0.05), range(threads)))
            t0 = time.perf_counter()
            list(pool.map(one, counts))
            return time.perf_counter() - t0
    finally:
        for conn in opened:
            conn.close()


FLOOR_PROJECT = "bqx_bench_floor"


def _write_floor_project(root: Path, families: list[str], pairs: list[str], n_float_columns: int) -> None:
    """A throw-away dbt project whose models are the families' per-pair models with
    constants instead of the computation: same names, rows (one per source bar), float
    columns and folder config (incremental, unique key, index) as in dbt_project.yml."""
    config = {fam: dbt_folder_config(fam) for fam in families}
    project = {
        "name": FLOOR_PROJECT,
        "version": "0.1.0",
        "config-version": 2,
        "profile": db.PROFILE_NAME,
        "flags": {"send_anonymous_usage_stats": False, "partial_parse": True},
        "models": {FLOOR_PROJECT: {"+schema": "bench_dbt_floor", **config}},
    }
    (root / "dbt_project.yml").write_text(json.dumps(project, indent=2))
    cols = _constant_columns(n_float_columns)
    for fam in families:
        folder = root / "models" / fam
        folder.mkdir(parents=True, exist_ok=True)
        for pair in pairs:
            (folder / f"{fam}_{pair}.sql").write_text(
                f"select ts_utc, {cols}\nfrom {raw_schema()}.m1_bars\nwhere pair = '{pair}'\n"
            )


def dbt_floor(url: str, families: list[str], pairs: list[str], n_float_columns: int, repeat: int) -> float:
    """(c'): the write floor's constants, built as dbt models into new tables, timed as (a)."""
    root = Path(tempfile.mkdtemp(prefix="bqx-bench-dbt-floor-"))
    _write_floor_project(root, families, pairs, n_float_columns)
    args = ["run", "--project-dir", str(root), "--target-path", str(root / "target"),
            "--log-path", str(root / "logs"), "--full-refresh"]

    def drop() -> None:
        with db.connect(url, autocommit=True) as conn:
            conn.execute(f"drop schema if exists {schema()}_bench_dbt_floor cascade")

    def once() -> float:
        drop()  # new tables every run, as in (a)
        return _dbt(url, args)

    try:
        return _best(repeat, once)
    finally:
        drop()
        shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- (q) query parts
def query_parts(url: str, target: str, pair: str, n_float_columns: int, repeat: int = 7) -> dict:
    """One reg_rate model's query against two cheaper queries over the same rows, each a
    CTAS into a temp table in one warm session (best of ``repeat``): the rows with
    constant float columns, and the distinct lag() reads the query makes, alone (as
    lags of y at 1, 2, ... bars). Reads the compiled SQL of the last full build."""

    query = _compiled_baseline(target, pair)
    lags = len(set(re.findall(r"lag\((\w+), (\d+)\) over bars", query)))
    rows = f"select ts_utc, rate_index as y from {schema()}.rate_index where pair = '{pair}'"
    consts = _constant_columns(n_float_columns)
    reads = ", ".join(f"lag(y, {k}) over bars as l{k}" for k in range(1, lags + 1))
    queries = {
        "q_query_ms": query,
        "q_lags_ms": f"with s as ({rows}) select ts_utc, {reads} from s window bars as (order by ts_utc)",
        "q_consts_ms": f"with s as ({rows}) select ts_utc, {consts} from s",
    }
    out: dict = {"q_pair": pair, "q_lags": lags}
    with db.connect(url, autocommit=True) as conn:
        out["q_rows"] = conn.execute(f"select count(*) from ({rows}) as s").fetchone()[0]
        for key, sql in queries.items():
            runs = []
            for _ in range(repeat):
                conn.execute("drop table if exists pg_temp.bench_query")
                t0 = time.perf_counter()
                conn.execute(f"create temp table bench_query as {sql}")
                runs.append(time.perf_counter() - t0)
            out[key] = min(runs) * 1e3
    return out


def _drop_tables(url: str, families: list[str], pairs: list[str]) -> None:
    """Drop the families' tables, so that the next build writes new tables."""
    names = ", ".join(f"bqx.{fam}_{pair}" for fam in families for pair in pairs)
    with db.connect(url, autocommit=True) as conn:
        conn.execute(f"drop table if exists {names}")


def _compiled_baseline(target: str, pair: str) -> str:
    """The SQL dbt compiled for the baseline's model of ``pair`` (reg_rate_<pair>) in the
    last build, from the target directory."""
    return Path(target, "compiled", "bqx_warehouse", "models", BASELINE, f"{BASELINE}_{pair}.sql").read_text()


def _chosen_method(target: str, pair: str) -> str:
    """The method reg_terms took in the last build: its CTEs are named after it, in the
    compiled SQL dbt wrote to the target directory."""
    return "chunk" if "chunk_rows" in _compiled_baseline(target, pair) else "merge"


def _fresh_build(url: str, families: list[str], pairs: list[str], args: list[str]) -> float:
    _drop_tables(url, families, pairs)
    return _dbt(url, args)


# ----------------------------------------------------------------------------- (b1) polyfit
def polyfit_per_row(url: str, pair: str, windows: list[int], rows: int, seed: int = 1) -> float:
    """Seconds per row (all windows) of numpy.polyfit, measured on ``rows`` rows."""
    with db.connect(url) as conn:
        y = np.array(
            [
                r[0]
                for r in conn.execute(
                    "select rate_index from bqx.rate_index where pair = %s order by ts_utc", (pair,)
                )
            ],
            dtype=float,
        )
    w_max = max(windows)
    picks = np.random.default_rng(seed).integers(w_max, len(y), size=min(rows, len(y) - w_max))
    t0 = time.perf_counter()
    for t in picks:
        for w in windows:
            x = np.arange(w, dtype=float)
            window = y[t - w + 1 : t + 1]
            a2, a1, a0 = np.polyfit(x, window, 2)
            fit = (a2 * x + a1) * x + a0
            res = window - fit
            ss_res = float(res @ res)
            dev = window - window.mean()
            _ = (
                a2 * (w - 1) ** 2,
                a1 * (w - 1),
                a0,
                1 - ss_res / float(dev @ dev) if dev.any() else 0.0,
                np.sqrt(ss_res / w),
            )
    return (time.perf_counter() - t0) / len(picks)


# ----------------------------------------------------------------------------- (b2) numpy
def _copy_out(conn, query: str) -> tuple[np.ndarray, np.ndarray]:
    """(ts µs since 2000, float) arrays from a 2-column query via binary COPY."""
    buf = bytearray()
    with conn.cursor() as cur, cur.copy(f"copy ({query}) to stdout (format binary)") as copy:
        for chunk in copy:
            buf += chunk
    body = bytes(buf[19:-2])
    n = len(body) // 26 if body else 0
    # each row: int16 n=2, int32 len=8, int64 ts, int32 len (8 or -1), float8 (absent when NULL)
    # rows with NULL y are shorter; parse generically when lengths vary
    if n * 26 == len(body):
        rec = np.frombuffer(
            body,
            dtype=np.dtype(
                [("n", ">i2"), ("l1", ">i4"), ("ts", ">i8"), ("l2", ">i4"), ("y", ">f8")]
            ),
        )
        if (rec["l2"] == 8).all():
            return rec["ts"].astype(np.int64), rec["y"].astype(float)
    ts, ys, pos = [], [], 0
    while pos < len(body):
        pos += 2 + 4
        ts.append(int.from_bytes(body[pos : pos + 8], "big", signed=True))
        pos += 8
        length = int.from_bytes(body[pos : pos + 4], "big", signed=True)
        pos += 4
        if length < 0:
            ys.append(np.nan)
        else:
            ys.append(np.frombuffer(body[pos : pos + 8], dtype=">f8")[0])
            pos += 8
    return np.array(ts, dtype=np.int64), np.array(ys, dtype=float)


def numpy_terms(y: np.ndarray, windows: list[int]) -> list[np.ndarray]:
    """All seven columns per window with cumulative sums (x from the window start)."""
    n = len(y)
    yz = np.nan_to_num(y - np.nanmean(y[: max(windows)]) if n else y)
    i = np.arange(n, dtype=float)
    valid = np.concatenate([[0], np.cumsum(~np.isnan(y))])
    sums = [np.concatenate([[0.0], np.cumsum(yz * i**k)]) for k in range(3)]
    sq = np.concatenate([[0.0], np.cumsum(yz * yz)])
    out = []
    for w in windows:
        t = np.arange(w - 1, n)
        s0, s1, s2 = (s[t + 1] - s[t + 1 - w] for s in sums)
        q = sq[t + 1] - sq[t + 1 - w]
        i0 = t - w + 1.0
        a1 = s1 - i0 * s0
        a2 = s2 - 2 * i0 * s1 + i0 * i0 * s0
        x = np.arange(w, dtype=float)
        g = np.array(
            [
                [w, x.sum(), (x**2).sum()],
                [x.sum(), (x**2).sum(), (x**3).sum()],
                [(x**2).sum(), (x**3).sum(), (x**4).sum()],
            ]
        )
        coef = np.linalg.solve(g, np.vstack([s0, a1, a2]))
        c0, c1, c2 = coef
        xe = w - 1.0
        quad, lin = c2 * xe * xe, c1 * xe
        pred = quad + lin + c0
        resid = yz[t] - pred
        ss_tot = q - s0 * s0 / w
        ss_res = np.maximum(ss_tot - (coef * np.vstack([s0, a1, a2])).sum(0) + s0 * s0 / w, 0)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
        rmse = np.sqrt(ss_res / w)
        full = (valid[t + 1] - valid[t + 1 - w]) == w
        for col in (quad, lin, c0, pred, resid, r2, rmse):
            arr = np.full(n, np.nan)
            arr[t] = np.where(full, col, np.nan)
            out.append(arr)
    return out


def _copy_in(conn, table: str, ts: np.ndarray, columns: list[np.ndarray]) -> None:
    k = len(columns) + 1
    fields = [("n", ">i2"), ("l_ts", ">i4"), ("ts", ">i8")]
    for j in range(len(columns)):
        fields += [(f"l{j}", ">i4"), (f"c{j}", ">f8")]
    rec = np.empty(len(ts), dtype=np.dtype(fields))
    rec["n"], rec["l_ts"], rec["ts"] = k, 8, ts
    for j, col in enumerate(columns):
        rec[f"l{j}"], rec[f"c{j}"] = 8, col  # NaN stands for NULL (a shortcut in b2's favour)
    with conn.cursor() as cur, cur.copy(f"copy {table} from stdin (format binary)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8) + rec.tobytes() + b"\xff\xff")


def out_of_database(url: str, pairs: list[str], windows: list[int], y_bqx: str) -> float:
    """(b2): COPY out, numpy cumulative sums for every window, COPY in; both families."""
    names = [f"w{w}_{s}" for w in windows for s in REG_STATS]
    ddl = ", ".join(f"{c} double precision" for c in names)
    with db.connect(url, autocommit=True) as conn:
        conn.execute("create schema if not exists bench_b2")
    jobs = [(fam, pair) for fam in REG_FAMILIES for pair in pairs]

    def one(job: tuple[str, str]) -> None:
        fam, pair = job
        up = families.get(families.get(fam).upstream[0])  # the table its y comes from
        query = (
            f"select ts_utc, rate_index from bqx.{up.name} where pair = '{pair}' order by ts_utc"
            if up.grain == families.GLOBAL
            else f"select ts_utc, {y_bqx} from bqx.{up.model(pair)} order by ts_utc"
        )
        with db.connect(url, autocommit=True) as conn:
            ts, y = _copy_out(conn, query)
            cols = numpy_terms(y, windows)
            conn.execute(f"create table bench_b2.{fam}_{pair} (ts_utc timestamptz, {ddl})")
            _copy_in(conn, f"bench_b2.{fam}_{pair}", ts, cols)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(_threads()) as pool:
        list(pool.map(one, jobs))
    return time.perf_counter() - t0


# ----------------------------------------------------------------------------- (t)
# the families checked against TA-Lib/ta (technical, bollinger): the registry's
INDICATOR_FAMILIES = families.checked_by("py_tasks.crosscheck_technical")


def indicator_families(url: str, pairs: list[str], repeat: int) -> dict:
    """(t): reg_rate alone, then technical and bollinger, each into new tables (best of
    ``repeat``), with their rows; (t2) the out-of-database TA-Lib peer of both."""
    out: dict = {}
    for fam in (BASELINE, *INDICATOR_FAMILIES):
        models = " ".join(f"{fam}_{p}" for p in pairs)
        _say(f"(t) dbt run {fam} into new tables")
        out[f"t_{fam}_s"] = _best(
            repeat, _fresh_build, url, [fam], pairs, ["run", "--select", models, "--full-refresh"]
        )
        out[f"t_{fam}_rows"] = _family_rows(url, [fam], pairs)
    _say("(t2) out of the database: COPY bars out, TA-Lib + ta in Python, COPY results in")
    out["t2_talib_s"] = talib_peer(url, pairs)
    return out


def talib_peer(url: str, pairs: list[str]) -> float:
    """(t2): per pair, COPY the rate-index bar and w15_bqx_return out, compute every
    technical and bollinger column with the cross-check's TA-Lib/ta reference functions,
    COPY the columns into a new table; pairs in parallel (dbt's thread count). The
    reference functions also work out where a row is a knife edge for the cross-check,
    so this peer does a little more than a bare TA-Lib worker would."""
    from . import crosscheck_technical as ref
    from .crosscheck_common import built_tables

    with db.connect(url, autocommit=True) as conn:
        conn.execute("drop schema if exists bench_t2 cascade")
        conn.execute("create schema bench_t2")
        tables = built_tables(conn)

    def one(pair: str) -> None:
        with db.connect(url, autocommit=True) as conn:
            inputs, _ = ref.read_inputs(conn, pair, tables)
            ts = inputs.ts_us - PG_EPOCH_US  # Unix µs -> PostgreSQL µs since 2000
            for fam in INDICATOR_FAMILIES:  # their references: the registry's
                groups = families.get(fam).reference_function()(inputs)
                columns = {name: r.expected for group in groups for name, r in group.items()}
                ddl = ", ".join(f"{c} double precision" for c in columns)
                conn.execute(f"create table bench_t2.{fam}_{pair} (ts_utc timestamptz, {ddl})")
                _copy_in(conn, f"bench_t2.{fam}_{pair}", ts, list(columns.values()))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(_threads()) as pool:
        list(pool.map(one, pairs))
    elapsed = time.perf_counter() - t0
    with db.connect(url, autocommit=True) as conn:
        conn.execute("drop schema bench_t2 cascade")
    return elapsed


# ----------------------------------------------------------------------------- driver
def _best(repeat: int, fn, *args) -> float:
    """The fastest of ``repeat`` runs: on a shared machine the minimum is the figure
    least disturbed by other work."""
    return min(fn(*args) for _ in range(max(1, repeat)))


def run_bench(
    days: int,
    pairs: list[str],
    seed: int,
    polyfit_rows: int,
    keep: bool,
    files: list[str] | None = None,
    repeat: int = 3,
) -> dict:
    from . import sample
    from .load import ensure_raw_table, load_files

    windows = [int(w) for w in dbt_var("reg_windows")]
    y_bqx = str(dbt_var("reg_bqx_source_column"))
    results: dict = {
        "days": None if files else days,
        "data": f"{len(files)} bar file(s)" if files else f"{days} day{'s' if days != 1 else ''} of synthetic bars",
        "pairs": len(pairs),
        "threads": _threads(),
        "repeat": repeat,
    }
    target = tempfile.mkdtemp(prefix="bqx-bench-target-")
    os.environ["DBT_TARGET_PATH"] = target
    os.environ["DBT_LOG_PATH"] = target
    with bench_database(keep) as url:
        with db.connect(url, autocommit=True) as conn:
            ensure_raw_table(conn)
            if files:
                _say(f"loading {len(files)} file(s)")
                load_files(files, conn=conn)
            else:
                _say(f"writing {days} days of synthetic bars for {len(pairs)} pairs")
                sample.write_sample(conn, days=days, pairs=pairs, seed=seed)
            pairs = [p for (p,) in conn.execute("select distinct pair from raw.m1_bars order by 1")]
        results["pairs"] = len(pairs)
        # seeds, rate index, bqx
        select = " ".join(f"+{families.get(u).model(p)}" for p in pairs for u in REG_UPSTREAM)
        ups = dict.fromkeys(u for f in REG_FAMILIES for u in families.get(f).upstream)
        _say(f"building upstream models ({', '.join(ups)}) — not timed")
        _dbt(url, ["build", "--select", select, "--exclude-resource-type", "test", "unit_test"])
        reg = " ".join(f"{f}_{p}" for p in pairs for f in REG_FAMILIES)
        regs = " + ".join(REG_FAMILIES)

        fams = list(REG_FAMILIES)
        n_columns = 1 + len(REG_STATS) * len(windows)  # y and the seven columns per window
        build = ["run", "--select", reg, "--full-refresh"]
        _say(f"(a) dbt run {regs} into new tables")
        results["a_build_s"] = _best(repeat, _fresh_build, url, fams, pairs, build)
        rows = _family_rows(url, fams, pairs)
        results["rows"] = rows
        _say(f"(a') dbt run {regs} --full-refresh over the existing tables")
        results["a_rebuild_s"] = _best(repeat, _dbt, url, build)
        _say(f"(q) the query of {BASELINE}_{pairs[0]} against its lag() reads and constants")
        results.update(query_parts(url, target, pairs[0], n_columns))

        _say(f"(e) dbt test of {', '.join(REG_UPSTREAM + REG_FAMILIES)}")
        tested = " ".join(f"{u}_{p}" for u in REG_UPSTREAM for p in pairs) + " " + reg
        results["e_test_s"] = _dbt(
            url, ["test", "--select", tested, "--indirect-selection", "buildable"]
        )

        corr = " ".join(f"{CROSS_PAIR}_{p}" for p in pairs)
        if set(pairs) == set(all_pairs()):
            _say(f"(f) dbt run {CROSS_PAIR}, full refresh")
            results["f_corr_s"] = _dbt(url, ["run", "--select", corr, "--full-refresh"])
            results["corr_rows"] = _family_rows(url, [CROSS_PAIR], pairs)
            cov_windows = [int(w) for w in dbt_var("term_cov_windows")]
            for w in (min(cov_windows), max(cov_windows)):
                _say(f"(g) {CROSS_PAIR} with only term_cov_windows = [{w}]")
                results[f"g_cov_w{w}_s"] = _dbt(
                    url,
                    [
                        "run",
                        "--select",
                        corr,
                        "--full-refresh",
                        "--vars",
                        json.dumps({"term_cov_windows": [w]}),
                    ],
                )
            results["cov_w_min"], results["cov_w_max"] = min(cov_windows), max(cov_windows)
        else:
            _say(f"(f), (g) skipped: {CROSS_PAIR} needs the {', '.join(REG_UPSTREAM)} tables of all 28 pairs")

        results.update(indicator_families(url, pairs, repeat))

        _say("(c) write floor: CREATE TABLE AS of constants, same rows and columns")
        floor_runs = []
        for _ in range(max(1, repeat)):
            floor_runs.append(
                write_floor(url, fams, pairs, n_columns)
            )
            with db.connect(url, autocommit=True) as conn:
                conn.execute("drop schema bench_floor cascade")
        results["c_floor_s"] = min(floor_runs)
        _say("(c') the same constants as dbt models (the families' materialisation and index)")
        results["c_dbt_floor_s"] = dbt_floor(url, fams, pairs, n_columns, repeat)

        _say(f"(b1) numpy.polyfit per row and window, on {polyfit_rows} rows")
        per_row = polyfit_per_row(url, pairs[0], windows, polyfit_rows, seed)
        results["b1_per_row_s"] = per_row
        results["b1_scaled_s"] = per_row * rows

        _say("(b2) out of the database: COPY out, numpy cumulative sums, COPY in")
        results["b2_s"] = out_of_database(url, pairs, windows, y_bqx)

        for w, method in ((min(windows), "auto"), (max(windows), "auto"), (max(windows), "merge")):
            key = f"d_w{w}_s" if method == "auto" else f"d_w{w}_{method}_s"
            _say(f"(d) only W = {w}, reg_method = {method}")
            results[key] = _best(
                repeat,
                _fresh_build,
                url,
                fams,
                pairs,
                [
                    "run",
                    "--select",
                    reg,
                    "--full-refresh",
                    "--vars",
                    json.dumps({"reg_windows": [w], "reg_method": method}),
                ],
            )
            results[key[: -len("_s")] + "_method"] = _chosen_method(target, pairs[0])
    results["w_min"], results["w_max"] = min(windows), max(windows)
    return results


_METHOD_NAMES = {"merge": "merge tree", "chunk": "chunk method"}


def print_results(r: dict) -> None:
    a, rows = r["a_build_s"], r["rows"]
    us = 1e6 / rows
    w_min, w_max = r["w_min"], r["w_max"]
    d_min, d_max, d_tree = r[f"d_w{w_min}_s"], r[f"d_w{w_max}_s"], r[f"d_w{w_max}_merge_s"]
    m_min = _METHOD_NAMES[r[f"d_w{w_min}_method"]]
    m_max = _METHOD_NAMES[r[f"d_w{w_max}_method"]]
    regs = " + ".join(REG_FAMILIES)
    tested = ", ".join(REG_UPSTREAM + REG_FAMILIES)
    lines = [
        f"bqx bench: {r['pairs']} pairs, {r.get('data', str(r['days']) + ' days')}, {rows:,} rows of {regs}, "
        f"{r['threads']} threads, best of {r.get('repeat', 1)} runs for (a), (a'), (c), (c'), (d)",
        f"  (a)  {'dbt run ' + regs:<36}{a:8.2f} s  {a * us:7.2f} µs/row   (new tables)",
        f"  (a') the same, over existing tables      {r['a_rebuild_s']:8.2f} s  "
        f"{r['a_rebuild_s'] * us:7.2f} µs/row   (dbt's full refresh: + swap and drop of the old tables)",
        f"  (b1) numpy.polyfit per row (scaled)      {r['b1_scaled_s']:8.2f} s  "
        f"{r['b1_per_row_s'] * 1e6:7.2f} µs/row   b1/a = {r['b1_scaled_s'] / a:7.1f}x  (target >= 20x)",
        f"  (b2) COPY out + numpy cumsums + COPY in  {r['b2_s']:8.2f} s  {r['b2_s'] * us:7.2f} µs/row   "
        f"a/b2 = {a / r['b2_s']:7.2f}x",
        f"  (c)  write floor (CTAS of constants)     {r['c_floor_s']:8.2f} s  {r['c_floor_s'] * us:7.2f} µs/row"
        f"   a/c = {a / r['c_floor_s']:7.2f}x  (target <= 5x)",
        f"  (c') the same constants as dbt models    {r['c_dbt_floor_s']:8.2f} s  "
        f"{r['c_dbt_floor_s'] * us:7.2f} µs/row   c'/c = {r['c_dbt_floor_s'] / r['c_floor_s']:5.2f}x"
        f" (dbt per model), a/c' = {a / r['c_dbt_floor_s']:5.2f}x (the computation)",
        f"  (q)  one model's query, {BASELINE}_{r['q_pair']} ({r['q_rows']:,} rows, CTAS in a warm session):"
        f" {r['q_query_ms']:.1f} ms; its {r['q_lags']} lag() reads alone {r['q_lags_ms']:.1f} ms;"
        f" its rows as constants {r['q_consts_ms']:.1f} ms",
        f"  (d)  only W = {w_min:<4}                       {d_min:8.2f} s   ({m_min})",
        f"       only W = {w_max:<4}                       {d_max:8.2f} s"
        f"   W{w_max}/W{w_min} = {d_max / d_min:5.2f}x  (target <= 1.3x; {m_max})",
        f"  (d') {f'only W = {w_max}, merge tree forced':<35} {d_tree:8.2f} s"
        f"   W{w_max}/W{w_min} = {d_tree / d_min:5.2f}x  (reg_method = merge)",
        f"  (e)  {'dbt test of ' + tested:<36}{r['e_test_s']:8.2f} s",
    ]
    if f"t_{BASELINE}_s" in r:
        base_s = r[f"t_{BASELINE}_s"]
        reg_us = base_s * 1e6 / r[f"t_{BASELINE}_rows"]
        lines.append(
            f"  (t)  {f'dbt run {BASELINE} alone':<36}{base_s:8.2f} s  {reg_us:7.2f} µs/row"
        )
        for fam in INDICATOR_FAMILIES:
            t, n = r[f"t_{fam}_s"], r[f"t_{fam}_rows"]
            target_ratio = families.get(fam).bench_target
            lines.append(
                f"       dbt run {fam:<28} {t:8.2f} s  {t * 1e6 / n:7.2f} µs/row   "
                f"/{BASELINE} per row = {t * 1e6 / n / reg_us:5.2f}x  (target <= {target_ratio:g}x)"
            )
        both = sum(r[f"t_{fam}_s"] for fam in INDICATOR_FAMILIES)
        lines.append(
            f"  (t2) COPY out + TA-Lib/ta + COPY in      {r['t2_talib_s']:8.2f} s  "
            f"{r['t2_talib_s'] * 1e6 / r[f't_{INDICATOR_FAMILIES[0]}_rows']:7.2f} µs/row   "
            f"({' + '.join(INDICATOR_FAMILIES)} in SQL) / t2 = {both / r['t2_talib_s']:5.2f}x"
        )
    if "f_corr_s" in r:
        g_min, g_max = r[f"g_cov_w{r['cov_w_min']}_s"], r[f"g_cov_w{r['cov_w_max']}_s"]
        lines += [
            f"  (f)  {'dbt run ' + CROSS_PAIR:<36}{r['f_corr_s']:8.2f} s  "
            f"{r['f_corr_s'] * 1e6 / r['corr_rows']:7.2f} µs/row",
            f"  (g)  covariances only W = {r['cov_w_min']:<4}            {g_min:8.2f} s",
            f"       covariances only W = {r['cov_w_max']:<4}            {g_max:8.2f} s"
            f"   W{r['cov_w_max']}/W{r['cov_w_min']} = {g_max / g_min:5.2f}x",
        ]
    print("\n".join(lines), flush=True)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmark the regression build against baselines")
    parser.add_argument("--days", type=int, default=10, help="days of synthetic bars (default 10)")
    parser.add_argument("--pairs", default=None, help="pairs (default: all 28)")
    parser.add_argument("--files", nargs="*", help="HistData/CSV files to load instead of a sample")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--polyfit-rows", type=int, default=300)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs of (a), (a'), (c), (c') and (d) (and 7 of (q)); the fastest is reported "
        "(default 3)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument(
        "--export",
        action="store_true",
        help="instead: export throughput of the built features of the selected database "
        "(e.g. the demo's) to a local S3 server, next to the COPY floor",
    )
    parser.add_argument(
        "--endpoint-url", default=None, help="with --export: an S3 endpoint instead"
    )
    parser.add_argument(
        "--bucket", default=None, help="with --export and --endpoint-url: the bucket"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.export:
        from . import export

        figures = export.benchmark(
            endpoint_url=args.endpoint_url,
            bucket=args.bucket,
            pairs=parse_pairs(args.pairs) if args.pairs else None,
        )
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2, default=str))
        return 0
    pairs = parse_pairs(args.pairs) if args.pairs else all_pairs()
    project_dir()
    results = run_bench(
        args.days, pairs, args.seed, args.polyfit_rows, args.keep, args.files, args.repeat
    )
    print_results(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0
