"""`bqx bench` end to end on a small data set: every figure is produced and printed.

Only that the benchmark runs and reports; its timings are figures for docs/benchmarks.md,
never asserted here (shared, noisy machines). The end-to-end run builds every family
several times (~85 s): it is in the scale tier (make test-scale), run before a change
to a family or to the bench lands; the floor project's shape is checked in make test.
"""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from py_tasks.cli import main


@pytest.mark.scale
def test_bench_prints_every_figure_and_drops_its_database(
    bqx_env: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench.json"
    argv = ["bench", "--days", "1", "--pairs", "eurusd,usdjpy", "--repeat", "1"]
    assert main([*argv, "--polyfit-rows", "20", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for label in ("(a) ", "(a')", "(b1)", "(b2)", "(c) ", "(c')", "(q) ", "(d) ", "(d')", "(e) ",
                  "a/c =", "c'/c =", "a/c' =", "b1/a =", "W630/W60 =", "lag() reads alone",
                  "(t) ", "(t2)", "dbt run technical", "dbt run bollinger", "/reg_rate per row ="):
        assert label in text, label
    assert "2 pairs, 1 day of synthetic bars," in text
    assert "(f), (g) skipped" in text  # correlation_bqx needs all 28 pairs
    figures = json.loads(out.read_text())
    assert figures["pairs"] == 2 and figures["rows"] > 0
    assert figures["q_lags"] == 42  # 14 in the 15-bar base block, then 4 per merge, 7 merges
    for key in ("a_build_s", "a_rebuild_s", "b1_scaled_s", "b2_s", "c_floor_s", "c_dbt_floor_s",
                "q_query_ms", "q_lags_ms", "q_consts_ms", "d_w60_s", "d_w630_s", "d_w630_merge_s",
                "t_reg_rate_s", "t_technical_s", "t_bollinger_s", "t2_talib_s"):
        assert figures[key] > 0, key
    # reg_method auto: the merge tree for W = 60 alone, the chunk method for W = 630 alone
    assert (figures["d_w60_method"], figures["d_w630_method"], figures["d_w630_merge_method"]) == (
        "merge", "chunk", "merge")
    assert "(merge tree)" in text and "chunk method)" in text
    with psycopg.connect(bqx_env) as conn:
        left = conn.execute("select count(*) from pg_database where datname like 'bqx_bench_%'").fetchone()
    assert left == (0,)


def test_dbt_floor_project_mirrors_the_family_models(tmp_path: Path) -> None:
    """(c') builds the families' own models with constants: same names, the folder config
    of dbt_project.yml (incremental, unique key, index) and one row per source bar."""
    from py_tasks import bench
    from py_tasks.config import dbt_folder_config

    bench._write_floor_project(tmp_path, ["reg_rate", "reg_bqx"], ["eurusd", "usdjpy"], 43)
    project = json.loads((tmp_path / "dbt_project.yml").read_text())
    models = project["models"][bench.FLOOR_PROJECT]
    assert models["reg_rate"] == dbt_folder_config("reg_rate")
    assert models["reg_bqx"] == dbt_folder_config("reg_bqx")
    assert models["reg_rate"]["+materialized"] == "incremental" and models["reg_rate"]["+indexes"]
    sql = (tmp_path / "models" / "reg_bqx" / "reg_bqx_usdjpy.sql").read_text()
    assert sql.count("::double precision as c") == 43
    assert "m1_bars" in sql and "where pair = 'usdjpy'" in sql
    assert sorted(p.name for p in (tmp_path / "models").rglob("*.sql")) == sorted(
        f"{fam}_{pair}.sql" for fam in ("reg_rate", "reg_bqx") for pair in ("eurusd", "usdjpy"))
