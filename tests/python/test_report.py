"""`bqx report` on a real PostgreSQL: a 2-day sample of two pairs, built with dbt.

The end-to-end test starts from the session's built database and runs the build of
bqx, reg_rate, reg_bqx for eurusd and usdjpy with their tests, writes the report and checks the files, the pictures, the coverage,
the dbt counts and the cross-check; then drops one table and checks that the report
calls it "not built". The other tests need no dbt build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import psycopg
import pytest

from py_tasks import report, sample
from py_tasks.cli import main
from py_tasks.dbtcmd import run_dbt
from py_tasks.load import ensure_raw_table

PAIRS = ["eurusd", "usdjpy"]
PNGS = ("rate_index_parabolas.png", "coverage_heatmap.png", "r2_histogram.png")


def _write_sample(url: str, days: int, pairs: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_raw_table(conn)
        sample.write_sample(conn, days=days, pairs=pairs)


def _check_png(path: Path) -> None:
    """A readable PNG of a real size whose pixels are not all alike (something is drawn)."""
    from matplotlib import image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
    pixels = image.imread(path)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500, (path, pixels.shape)
    rgb = pixels[..., :3].reshape(-1, 3)
    assert rgb.std() > 0.05, path  # not blank
    assert len(np.unique((rgb * 255).astype(np.uint8), axis=0)) > 20, path  # several colours


def _md_row(text: str, pair: str) -> list[str]:
    line = next(ln for ln in text.splitlines() if ln.startswith(f"| {pair} | 20"))
    return [c.strip() for c in line.strip("|").split("|")]


@pytest.mark.slow
def test_report_end_to_end(built_env: str, tmp_path: Path, dbt_target_dir: Path, capsys) -> None:
    # a copy of the session's built database (conftest.py): these two days of these two
    # pairs, built; the sample adds nothing and the build runs the tests
    bqx_env = built_env
    _write_sample(bqx_env, days=2, pairs=PAIRS)
    selection = " ".join(f"+reg_bqx_{p} +reg_rate_{p}" for p in PAIRS)
    # cautious: only the tests whose every parent is selected (not those of other pairs
    # that merely share the upstream rate_index)
    result = run_dbt(["build", "--select", selection, "--indirect-selection", "cautious"], bqx_env)
    failed = [(n.node.name, str(n.status), n.message) for n in result.result or []
              if str(n.status) not in ("success", "pass")]
    assert result.success, failed or result.exception

    out = tmp_path / "report"
    data, written = report.build_report(pairs=PAIRS, out=out, crosscheck_sample=5)

    # files: both formats and the three pictures beside them
    assert set(written) == {"html", "md"}
    for name in ("report.html", "report.md", *PNGS):
        assert (out / name).is_file(), name
    for name in PNGS:
        _check_png(out / name)

    # coverage: every bar beyond each warm-up has its features, for every window
    cov = data.coverage
    assert cov.built["bqx"] == PAIRS and cov.built["reg_rate"] == PAIRS
    assert cov.built["reg_bqx"] == PAIRS and cov.built["correlation_bqx"] == []
    assert {(r.pair, r.month) for r in cov.rows} == {(p, "2024-07") for p in PAIRS}
    assert cov.gaps() == []
    for row in cov.rows:
        assert row.bars > 2500 and row.first_ts.day == 1 and row.last_ts.day == 2
        assert row.families["correlation_bqx"] is None
        for fam in ("bqx", "reg_rate", "reg_bqx"):
            fm = row.families[fam]
            assert fm.share == 1.0 and fm.rows == row.bars
            for w, c in fm.windows.items():
                warmup = {"bqx": w, "reg_rate": w - 1, "reg_bqx": 15 + w - 1}[fam]
                assert c.due == c.ok == row.bars - warmup, (fam, w)

    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    for pair in PAIRS:
        cells = _md_row(md, pair)
        assert cells[5:] == ["100%", "100%", "100%", "not built"], cells
    assert "coverage beyond the warm-up is 100% for bqx, reg_rate, reg_bqx" in md

    # dbt results: the build's tests are counted, nothing failed
    assert data.dbt.found and data.dbt.command == "build"
    assert data.dbt.path == dbt_target_dir / "target" / "run_results.json"
    assert data.dbt.tests["pass"] > 0 and not data.dbt.failed
    test_row = next(ln for ln in md.splitlines() if ln.startswith("| test |"))
    assert int(test_row.split("|")[2]) == data.dbt.counts["test"]["pass"] > 0
    assert data.dbt.invocation_id in md and "No node failed" in md

    # cross-check: ran on the sample, passed, largest errors per family listed
    assert data.crosscheck.status == "passed", data.crosscheck
    assert {f["family"] for f in data.crosscheck.families} == {"bqx", "reg_rate", "reg_bqx"}
    assert {r["family"] for r in data.crosscheck.rows} == {"bqx", "reg_rate", "reg_bqx"}
    assert "**PASSED**" in md

    # the parabolas drawn from the stored terms reproduce the stored rmse and prediction
    parabolas = data.plots[0]
    assert parabolas.file == PNGS[0] and {r["window"] for r in parabolas.table} == {60, 240}
    for r in parabolas.table:
        assert r["redrawn_rmse"] == pytest.approx(r["stored_rmse"], rel=1e-9, abs=1e-12)
        assert r["prediction_gap"] < 1e-9

    # HTML: one self-contained file, pictures referenced relative to it
    assert "<style>" in html and "<link" not in html and "<script" not in html
    assert not re.search(r"(src|href)=\"(https?:|/)", html)
    for name in PNGS:
        assert f'src="{name}"' in html and f"]({name})" in md

    # a table that is gone is reported as "not built" and a dropped column as a gap, not
    # a crash (and through the CLI)
    with psycopg.connect(bqx_env, autocommit=True) as conn:
        conn.execute("drop table bqx.reg_bqx_usdjpy")
        conn.execute("alter table bqx.bqx_usdjpy drop column w75_bqx_stdev")
    code = main(["report", "--pairs", ",".join(PAIRS), "--out", str(out / "again"),
                 "--format", "md", "--no-crosscheck"])
    assert code == 0, capsys.readouterr().err
    md2 = (out / "again" / "report.md").read_text()
    assert _md_row(md2, "usdjpy")[5:] == ["0.00%", "100%", "not built", "not built"]
    assert "bqx_usdjpy lacks 1 feature columns (w75_bqx_stdev)" in md2
    assert re.search(r"\| usdjpy \| 2024-07 \| bqx \| 75 \| [\d,]+ \| 0 \| 0.00% \|", md2)
    assert _md_row(md2, "eurusd")[5:] == ["100%", "100%", "100%", "not built"]
    assert "reg_bqx: not built for 1 of the 2 selected pairs" in md2
    assert "Cross-check skipped" in md2
    assert not (out / "again" / "report.html").exists()
    assert (out / "again" / "r2_histogram.png").is_file()


def test_report_before_any_build(bqx_env: str, tmp_path: Path, capsys) -> None:
    """Only raw bars: every family is "not built", no run_results, plots say why not."""
    _write_sample(bqx_env, days=1, pairs=["audcad"])
    out = tmp_path / "r"
    code = main(["report", "--pairs", "audcad,eurusd", "--out", str(out), "--no-crosscheck",
                 "--run-results", str(tmp_path / "missing" / "run_results.json")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    md = (out / "report.md").read_text()
    assert _md_row(md, "audcad")[5:] == ["not built"] * 4
    assert "| eurusd | — | 0 |" in md  # selected, but no bars
    assert "no source bars for eurusd" in md
    assert "No dbt results" in md and "not found" in md
    assert "not drawn: rate_index is not built" in md
    assert "not drawn: no regression family is built" in md
    _check_png(out / "coverage_heatmap.png")  # the grey "not built" map is still drawn
    assert not (out / "rate_index_parabolas.png").exists()
    assert "<h2>dbt results</h2>" in (out / "report.html").read_text()


def test_report_needs_the_source_table(bqx_env: str, tmp_path: Path, capsys) -> None:
    code = main(["report", "--out", str(tmp_path), "--no-crosscheck"])
    assert code == 1
    assert "raw.m1_bars does not exist" in capsys.readouterr().err


def test_bad_options(tmp_path: Path, capsys) -> None:
    assert main(["report", "--format", "pdf", "--out", str(tmp_path)]) == 1
    assert "unknown report format 'pdf'" in capsys.readouterr().err
    assert main(["report", "--pairs", "eurxyz", "--out", str(tmp_path)]) == 1
    assert "unknown pair 'eurxyz'" in capsys.readouterr().err
    assert report.parse_formats("md") == ["md"]
    assert report.parse_formats("HTML, markdown") == ["html", "md"]


def test_run_results_counts_and_failures(tmp_path: Path) -> None:
    def node(uid: str, status: str, message: str | None = None, failures: int | None = None):
        return {"unique_id": uid, "status": status, "message": message, "failures": failures,
                "execution_time": 0.1}

    doc = {
        "metadata": {"invocation_id": "inv-1", "generated_at": "2026-01-02T03:04:05Z",
                     "invocation_started_at": "2026-01-02T03:04:00Z"},
        "args": {"which": "build"},
        "elapsed_time": 5.0,
        "results": [
            node("model.bqx_warehouse.reg_rate_eurusd", "success"),
            node("test.bqx_warehouse.not_null_x", "pass", None, 0),
            node("test.bqx_warehouse.r2_in_range", "fail", "Got 3 results, configured to fail if != 0", 3),
            node("test.bqx_warehouse.warm_up", "warn", "Got 1 result\nmore detail", 1),
            node("unit_test.bqx_warehouse.reg_terms_flat", "error",
                 "Database Error in unit_test reg_terms_flat (models/x.yml)\n  division by zero\n"),
        ],
    }
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(doc))
    res = report.read_run_results(path)
    assert res.found and res.command == "build" and res.invocation_id == "inv-1"
    assert res.tests == {"pass": 1, "fail": 1, "warn": 1, "error": 1}
    assert [f.status for f in res.failed] == ["error", "fail", "warn"]
    assert res.failed[0].message == (
        "Database Error in unit_test reg_terms_flat (models/x.yml): division by zero"
    )
    assert res.failed[1].failures == 3 and res.failed[2].message == "Got 1 result"

    missing = report.read_run_results(tmp_path / "nope.json")
    assert not missing.found and missing.problem == "not found"
    (tmp_path / "bad.json").write_text("{not json")
    assert "unreadable" in report.read_run_results(tmp_path / "bad.json").problem


def test_crosscheck_rows_from_to_dict() -> None:
    doc = {
        "passed": False,
        "families": {
            "reg_rate": {
                "family": "reg_rate", "passed": False, "pairs": ["eurusd"], "rows_checked": 40,
                "max_ratio": "inf", "problems": [],
                "columns": {
                    "w60_r2": {"column": "w60_r2", "checked": 40, "breaches": 0,
                               "max_ratio": 0.01, "max_error": 1e-8, "tolerance": 1e-6,
                               "pair": "eurusd", "ts_utc": "2024-07-01T10:00:00+00:00"},
                    "w60_rmse": {"column": "w60_rmse", "checked": 40, "breaches": 1,
                                 "max_ratio": "inf", "max_error": None, "tolerance": None},
                },
            },
            "odd": "not a dict",
        },
    }
    fams, rows = report.crosscheck_rows(doc)
    assert [f["family"] for f in fams] == ["reg_rate"] and fams[0]["max_ratio"] == float("inf")
    assert [r["column"] for r in rows] == ["w60_rmse", "w60_r2"]  # worst first
    assert report.crosscheck_rows({}) == ([], [])
    assert report.crosscheck_rows({"families": [1, 2]}) == ([], [])


def test_format_share_never_rounds_up_to_100() -> None:
    assert report.format_share(1.0) == "100%"
    assert report.format_share(0.99999) == "99.99%"
    assert report.format_share(0.5) == "50.00%"
    assert report.format_share(None) == "—"
