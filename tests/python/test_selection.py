"""Selecting one pair on a new database builds and tests that pair only.

dbt's default indirect selection ("eager") would also run every test that reads a
selected node, e.g. the one-row-per-bar tests of the other pairs' bqx tables (they
read rate_index), which `+reg_bqx_eurusd` never builds. dbt_project.yml sets
`indirect_selection: buildable`, so the README's one-pair command works from scratch.
"""

from __future__ import annotations

from py_tasks.cli import main
from py_tasks.dbtcmd import run_dbt


def test_one_pair_and_its_ancestors_build_and_test_on_a_new_database(bqx_env: str) -> None:
    assert main(["sample", "--days", "1", "--pairs", "eurusd,usdjpy"]) == 0
    result = run_dbt(["build", "--select", "+reg_bqx_eurusd"], bqx_env)
    assert result.success, result.exception
    ran = [node.node.unique_id for node in result.result]
    tests = [uid for uid in ran if uid.startswith("test.")]
    assert tests, "the pair's own tests run"
    assert any("reg_bqx_eurusd" in uid for uid in tests)
    assert not any("usdjpy" in uid for uid in ran), "nothing of the other pair is built or tested"


def test_cross_family_test_names_the_tables_it_lacks(bqx_env: str) -> None:
    """reg_families_aligned reads both regression families of all 28 pairs; run where
    they were never built, it stops with one message naming them, not a SQL error."""
    assert main(["sample", "--days", "1", "--pairs", "eurusd"]) == 0
    assert run_dbt(["build", "--select", "+reg_rate_eurusd"], bqx_env).success
    result = run_dbt(["test", "--select", "reg_families_aligned"], bqx_env)
    assert not result.success
    (node,) = result.result
    assert str(node.status) == "error"
    assert "reg_families_aligned reads 55 table(s) that are not built" in node.message
    assert "reg_bqx_audcad" in node.message and "bqx dbt -- build" in node.message
    assert "does not exist" not in node.message
