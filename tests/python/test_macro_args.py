"""reg_terms and bqx_momentum refuse bad arguments at compile time, with one clear
message naming the macro and the argument (dbt compile --inline, no table needed)."""

from __future__ import annotations

import pytest

from py_tasks.dbtcmd import run_dbt

CASES = [
    ("{{ reg_terms(source=ref('rate_index'), y_column='rate_index', windows=[60, 2]) }}",
     "reg_terms: every window must be an integer >= 3 (a parabola needs 3 bars), got 2"),
    ("{{ reg_terms(source=ref('rate_index'), y_column='rate_index', windows=[60, 60]) }}",
     "reg_terms: 'windows' has duplicates"),
    ("{{ reg_terms(source=ref('rate_index'), y_column='rate index; drop', windows=[60]) }}",
     "reg_terms: 'y_column' must be a column name"),
    ("{{ reg_terms(source=ref('rate_index'), y_column='rate_index', windows=60) }}",
     "reg_terms: 'windows' must be a non-empty list"),
    ("{{ reg_terms(source=ref('rate_index'), y_column='rate_index', windows=[60], method='fast') }}",
     "reg_terms: 'method' (var reg_method) must be one of auto, merge, chunk, got fast"),
    ("{{ bqx_momentum(source=ref('rate_index'), price_column='rate_index', windows=[15], pair='EURUSD') }}",
     "bqx_momentum: 'pair' must match ^[a-z]{6}$, got EURUSD"),
    ("{{ bqx_momentum(source=ref('rate_index'), price_column='rate_index', windows=[1]) }}",
     "bqx_momentum: every window must be an integer >= 2 (a sample stdev needs 2 bars), got 1"),
    ("{{ bollinger(source=ref('rate_index'), momentum=ref('bqx_eurusd'), pair='eurusd', windows=[20, 1]) }}",
     "bollinger: every window must be an integer >= 2 (a standard deviation needs 2 bars), got 1"),
    ("{{ bollinger(source=ref('rate_index'), momentum=none, pair='eurusd', windows=[20]) }}",
     "bollinger: argument 'momentum' (a ref() to the pair's bqx table) is required"),
    ("{{ technical(source=ref('rate_index'), momentum=ref('bqx_eurusd'), pair='eur/usd', ma_windows=[10]) }}",
     "technical: 'pair' must match ^[a-z]{6}$, got eur/usd"),
    ("{{ technical(source=ref('rate_index'), momentum=ref('bqx_eurusd'), pair='eurusd', ma_windows=[10, 10]) }}",
     "technical: 'windows' has duplicates"),
]


@pytest.mark.parametrize(("query", "message"), CASES)
def test_bad_arguments_fail_at_compile_time(
    bqx_env: str, capfd: pytest.CaptureFixture[str], query: str, message: str
) -> None:
    capfd.readouterr()
    result = run_dbt(["compile", "--inline", query], bqx_env)
    out = capfd.readouterr().out
    assert not result.success
    assert message in out, out[-2000:]
