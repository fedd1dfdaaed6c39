"""``bqx load``: HistData and CSV files into raw.m1_bars, validated, all-or-nothing."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg
import pytest

from py_tasks.cli import main
from py_tasks.load import BAR_DTYPE, LoadError, ensure_raw_table, load_bars, load_files

UTC = timezone.utc
EURUSD = [
    "20171002 000000;1.177790;1.177810;1.177720;1.177810;0",
    "20171002 000100;1.177800;1.177900;1.177700;1.177850;0",
    "20171002 000200;1.177850;1.177850;1.177850;1.177850;0",
    "20171002 000300;1.177860;1.177990;1.177600;1.177990;3",
]
GBPUSD = [
    "20171031 185900;1.327500;1.327600;1.327400;1.327550;0",
    "20171031 190000;1.327550;1.327700;1.327500;1.327600;0",
    "20171101 000000;1.327600;1.327650;1.327500;1.327500;0",
]


def write(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.fixture()
def conn(bqx_env: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(bqx_env, autocommit=True) as c:
        yield c


def stored(conn: psycopg.Connection) -> list[tuple]:
    ensure_raw_table(conn)
    return conn.execute(
        "select pair, ts_utc, open, high, low, close, volume from raw.m1_bars order by pair, ts_utc"
    ).fetchall()


def test_histdata_loads_in_utc_and_reload_adds_nothing(conn, tmp_path, capsys) -> None:
    eur = write(tmp_path / "DAT_ASCII_EURUSD_M1_201710.csv", EURUSD)
    gbp = write(tmp_path / "DAT_ASCII_GBPUSD_M1_201710.csv.gz", GBPUSD)
    results = load_files([eur, gbp], conn=conn)
    assert [(r.pairs, r.fmt, r.rows_read, r.rows_added) for r in results] == [
        (("eurusd",), "histdata", 4, 4),
        (("gbpusd",), "histdata", 3, 3),
    ]
    rows = stored(conn)
    assert rows[0] == ("eurusd", datetime(2017, 10, 2, 5, 0, tzinfo=UTC),
                       1.17779, 1.17781, 1.17772, 1.17781, 0)
    assert rows[3][1] == datetime(2017, 10, 2, 5, 3, tzinfo=UTC) and rows[3][6] == 3
    # EST without DST: 18:59 EST on Oct 31 is 23:59 UTC, midnight EST is 05:00 UTC.
    assert [r[1] for r in rows[4:]] == [
        datetime(2017, 10, 31, 23, 59, tzinfo=UTC),
        datetime(2017, 11, 1, 0, 0, tzinfo=UTC),
        datetime(2017, 11, 1, 5, 0, tzinfo=UTC),
    ]
    assert main(["load", str(eur), str(gbp)]) == 0
    out = capsys.readouterr().out
    assert "4 read, 0 added, 4 already present" in out
    assert "3 read, 0 added, 3 already present" in out
    assert len(stored(conn)) == 7


def test_open_close_outside_high_low_is_accepted(conn, tmp_path) -> None:
    path = write(tmp_path / "DAT_ASCII_USDJPY_M1_201710.csv",
                 ["20171002 000000;112.5;112.4;112.3;112.2;0"])
    assert load_files([path], conn=conn)[0].rows_added == 1


BAD_LINES = {
    "non-numeric price": ("20171002 000200;1.17785;abc;1.17785;1.17785;0", "high price 'abc'"),
    "zero price": ("20171002 000200;0;1.17785;1.17785;1.17785;0", "open price 0 is not a positive"),
    "infinite price": ("20171002 000200;1.1;inf;1.1;1.1;0", "high price inf is not a positive"),
    "high below low": ("20171002 000200;1.15;1.1;1.2;1.15;0", "high 1.1 is below low 1.2"),
    "too few fields": ("20171002 000200;1.1;1.2;1.0;1.1", "expected 6 fields"),
    "bad date": ("20171302 000200;1.1;1.2;1.0;1.1;0", "bad timestamp '20171302 000200'"),
    "bad time": ("20171002 006000;1.1;1.2;1.0;1.1;0", "bad timestamp"),
    "negative volume": ("20171002 000200;1.1;1.2;1.0;1.1;-1", "volume -1 is negative"),
    "duplicate": ("20171002 000000;1.1;1.2;1.0;1.1;0", "duplicate timestamp 20171002 000000"),
}


@pytest.mark.parametrize("problem", list(BAD_LINES))
def test_bad_line_stores_nothing_and_names_file_and_line(conn, tmp_path, capsys, problem) -> None:
    line, expected = BAD_LINES[problem]
    lines = EURUSD[:2] + [line] + EURUSD[3:]
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_201710.csv", lines)
    assert main(["load", str(path)]) == 1
    errors = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bqx: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"bqx: error: {path} line 3: ")
    assert expected in errors[0] and "nothing of this file was stored" in errors[0]
    assert stored(conn) == []


def test_files_before_a_bad_file_stay_loaded(conn, tmp_path, capsys) -> None:
    good = write(tmp_path / "DAT_ASCII_EURUSD_M1_201710.csv", EURUSD)
    bad = write(tmp_path / "DAT_ASCII_GBPUSD_M1_201710.csv.gz", GBPUSD[:2] + ["garbage"])
    later = write(tmp_path / "DAT_ASCII_USDJPY_M1_201710.csv", ["20171002 000000;1;1;1;1;0"])
    assert main(["load", str(good), str(bad), str(later)]) == 1
    captured = capsys.readouterr()
    assert f"{bad} line 3: expected 6 fields" in captured.err
    assert "1 earlier file(s) loaded and kept, 1 later file(s) not loaded" in captured.err
    assert "4 read, 4 added" in captured.out
    assert {r[0] for r in stored(conn)} == {"eurusd"}
    with pytest.raises(LoadError) as info:
        load_files([good, bad], conn=conn)
    assert [r.rows_present for r in info.value.results] == [4]


def test_unknown_pair_lists_the_valid_pairs(conn, tmp_path, capsys) -> None:
    path = write(tmp_path / "DAT_ASCII_XAUUSD_M1_201710.csv", EURUSD)
    assert main(["load", str(path)]) == 1
    err = capsys.readouterr().err
    assert "unknown pair 'xauusd'" in err and "valid pairs: audcad audchf" in err
    plain = write(tmp_path / "bars.txt", EURUSD)
    assert main(["load", "--pair", "EURUSD1", str(plain)]) == 1
    assert "valid pairs: audcad" in capsys.readouterr().err
    assert main(["load", str(plain)]) == 1
    assert "pass --pair" in capsys.readouterr().err
    assert main(["load", "--pair", "eurusd", str(plain)]) == 0
    assert len(stored(conn)) == 4


def test_csv_loads_with_offsets_and_empty_volume(conn, tmp_path, capsys) -> None:
    path = write(tmp_path / "bars.csv.gz", [
        "pair,ts_utc,open,high,low,close,volume",
        "eurusd,2024-07-01T00:00:00Z,1.08,1.0801,1.0799,1.08005,12",
        "eurusd,2024-07-01 02:01:00+02:00,1.08005,1.0802,1.08,1.0801,",
        "usdjpy,2024-07-01T00:00:00+00:00,160.1,160.2,160.0,160.15,7",
    ])
    assert main(["load", str(path)]) == 0
    assert "3 read, 3 added" in capsys.readouterr().out
    assert stored(conn) == [
        ("eurusd", datetime(2024, 7, 1, 0, 0, tzinfo=UTC), 1.08, 1.0801, 1.0799, 1.08005, 12),
        ("eurusd", datetime(2024, 7, 1, 0, 1, tzinfo=UTC), 1.08005, 1.0802, 1.08, 1.0801, None),
        ("usdjpy", datetime(2024, 7, 1, 0, 0, tzinfo=UTC), 160.1, 160.2, 160.0, 160.15, 7),
    ]
    bad = write(tmp_path / "bad.csv", [
        "pair,ts_utc,open,high,low,close,volume",
        "eurusd,2024-07-01T00:00:00Z,1.08,1.0801,1.0799,1.08005,12",
        "eurxxx,2024-07-01T00:01:00Z,1.08,1.0801,1.0799,1.08005,12",
    ])
    assert main(["load", "--format", "csv", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad} line 3: unknown pair 'eurxxx'" in err and "valid pairs:" in err


def test_unrecognised_format_and_missing_file(conn, tmp_path, capsys) -> None:
    path = write(tmp_path / "DAT_ASCII_EURUSD_M1_201710.csv", ["hello;world"])
    assert main(["load", str(path)]) == 1
    assert "line 1: cannot tell the format" in capsys.readouterr().err
    assert main(["load", str(tmp_path / "nope.csv")]) == 1
    assert "no such file" in capsys.readouterr().err


def test_load_bars_writes_arrays_and_null_volume(conn) -> None:
    ensure_raw_table(conn)
    bars = np.zeros(3, dtype=BAR_DTYPE)
    bars["ts_utc"] = np.array(["2024-07-01T00:00", "2024-07-01T00:01", "2024-07-01T00:02"],
                              dtype="datetime64[us]")
    bars["open"] = bars["high"] = bars["low"] = bars["close"] = [1.1, 1.2, 1.3]
    bars["volume"] = [5, -1, 0]
    assert load_bars(conn, {"eurusd": bars}) == {"eurusd": 3}
    assert load_bars(conn, {"eurusd": bars}) == {"eurusd": 0}
    assert [r[6] for r in stored(conn)] == [5, None, 0]
