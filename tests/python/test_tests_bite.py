"""The validation stage bites: each corruption makes the matching dbt test fail.

On a copy of the session's built database (conftest.py: two days of eurusd and
usdjpy), checks that `dbt test` passes, then, each in a copy of its own, corrupts one
thing in a built table (a term, a residual, a duplicated row, a NULL after the
warm-up, a value during the warm-up, a missing window column), runs `dbt test` on
that model and asserts the expected test fails, by name.
"""

from __future__ import annotations

import psycopg
import pytest

from py_tasks.dbtcmd import run_dbt

PAIR = "eurusd"


def _failed_tests(url: str, select: str) -> set[str]:
    result = run_dbt(
        ["test", "--select", select, "--exclude", "test_type:singular", "--indirect-selection", "buildable"],
        url,
    )
    return {r.node.name for r in (result.result or []) if str(r.status) in ("fail", "error")}


def _sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


CORRUPTIONS = [
    # (model, SQL, the test expected to fail: a prefix of its node name)
    (
        "reg_rate",
        "update bqx.reg_rate_{p} set w60_quadratic_term = w60_quadratic_term * 1.001 + 1e-3"
        " where ts_utc = (select ts_utc from bqx.reg_rate_{p} order by ts_utc offset 2000 limit 1)",
        "reg_terms_contract_reg_rate",
    ),
    (
        "reg_bqx",
        "update bqx.reg_bqx_{p} set w90_residual = w90_residual + 1e-6"
        " where ts_utc = (select ts_utc from bqx.reg_bqx_{p} order by ts_utc offset 2000 limit 1)",
        "reg_terms_contract_reg_bqx",
    ),
    (
        "reg_rate",
        "update bqx.reg_rate_{p} set w240_r2 = null"
        " where ts_utc = (select ts_utc from bqx.reg_rate_{p} order by ts_utc offset 1500 limit 1)",
        "reg_terms_contract_reg_rate",
    ),
    (
        "reg_rate",
        "update bqx.reg_rate_{p} set w630_rmse = 0"
        " where ts_utc = (select ts_utc from bqx.reg_rate_{p} order by ts_utc offset 10 limit 1)",
        "reg_terms_contract_reg_rate",
    ),
    (
        "bqx",
        "update bqx.bqx_{p} set w45_bqx_stdev = null"
        " where ts_utc = (select ts_utc from bqx.bqx_{p} order by ts_utc offset 500 limit 1)",
        "bqx_momentum_contract_bqx",
    ),
    (
        "reg_rate",
        "do $$ declare r record; begin for r in select indexname from pg_indexes"
        " where schemaname = 'bqx' and tablename = 'reg_rate_{p}' loop"
        " execute format('drop index bqx.%I', r.indexname); end loop; end $$;"
        " insert into bqx.reg_rate_{p}"
        " select * from bqx.reg_rate_{p} order by ts_utc desc limit 1",
        "unique_reg_rate_{p}_ts_utc",
    ),
    (
        "reg_bqx",
        "alter table bqx.reg_bqx_{p} drop column w150_rmse",
        "columns_match_windows_reg_bqx",
    ),
    (
        "reg_rate",
        "delete from bqx.reg_rate_{p}"
        " where ts_utc = (select ts_utc from bqx.reg_rate_{p} order by ts_utc offset 100 limit 1)",
        "one_row_per_source_bar_reg_rate",
    ),
]


def test_the_built_families_pass_before_any_corruption(built_env: str) -> None:
    for family in ("bqx", "reg_rate", "reg_bqx"):
        assert not _failed_tests(built_env, f"{family}_{PAIR}"), (
            f"{family}_{PAIR} fails before any corruption"
        )


@pytest.mark.parametrize(("family", "statement", "expected"), CORRUPTIONS,
                         ids=[f"{i}-{c[2].format(p=PAIR)}" for i, c in enumerate(CORRUPTIONS)])
def test_each_corruption_fails_its_test(
    built_env: str, family: str, statement: str, expected: str
) -> None:
    """One corruption in this test's own copy of the built database (conftest.py)."""
    model = f"{family}_{PAIR}"
    _sql(built_env, statement.format(p=PAIR))
    failed = _failed_tests(built_env, model)
    expected_name = expected.format(p=PAIR)
    assert any(name.startswith(expected_name) for name in failed), (
        f"corrupting {model} ({statement[:60]}...) should fail {expected_name}, failed: {failed}"
    )
