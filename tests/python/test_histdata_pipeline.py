"""A HistData-format file, written here, goes through load -> dbt -> cross-check.

The bars come from the synthetic generator, shifted to EST without daylight saving
and written in HistData's generic ASCII M1 format (`YYYYMMDD HHMMSS;o;h;l;c;v`), so
the test needs nothing outside the repository.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import psycopg
import pytest

from py_tasks import codegen, crosscheck, sample
from py_tasks.cli import main
from py_tasks.dbtcmd import run_dbt


def _write_histdata(path: Path, bars: np.ndarray) -> None:
    est = bars["ts_utc"] - np.timedelta64(5, "h")
    lines = []
    for ts, o, h, low, c, v in zip(est, bars["open"], bars["high"], bars["low"], bars["close"],
                                    bars["volume"], strict=True):
        stamp = np.datetime_as_string(ts, unit="s").replace("-", "").replace("T", " ").replace(":", "")
        lines.append(f"{stamp};{float(o)!r};{float(h)!r};{float(low)!r};{float(c)!r};{max(int(v), 0)}")
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(lines) + "\n")


@pytest.mark.slow
def test_histdata_file_loads_builds_and_crosschecks(bqx_env: str, tmp_path: Path) -> None:
    bars = sample.generate(days=3, pairs=["gbpjpy"], seed=7)["gbpjpy"]
    path = tmp_path / "DAT_ASCII_GBPJPY_M1_202407.csv.gz"
    _write_histdata(path, bars)
    assert main(["load", str(path)]) == 0
    assert main(["load", str(path)]) == 0  # re-loading adds nothing
    with psycopg.connect(bqx_env) as conn:
        stored = conn.execute("select count(*), min(ts_utc) from raw.m1_bars").fetchone()
    assert stored[0] == len(bars)
    assert stored[1].replace(tzinfo=None) == bars["ts_utc"][0].astype("datetime64[us]").item()
    result = run_dbt(["build", "--select", "+reg_bqx_gbpjpy +reg_rate_gbpjpy",
                      "--exclude", "test_type:singular", "--indirect-selection", "buildable"], bqx_env)
    assert result.success, result.exception
    with psycopg.connect(bqx_env) as conn:
        report = crosscheck.run_crosscheck(conn, families=["bqx", "reg_rate", "reg_bqx"],
                                           pairs=["gbpjpy"], sample=300, seed=3)
    assert report.passed


def test_generated_files_are_up_to_date() -> None:
    assert codegen.check() == []
