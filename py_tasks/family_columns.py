"""Part of the family registry (``py_tasks/families.py``, docs/adding-a-family.md): what
``bqx codegen`` writes for each generated family beyond its template, one function per
family and kind: the YAML columns after ``ts_utc`` (with descriptions and column tests),
the model tests, and the query the singular coverage test reads per pair. The registry's
entries name these functions (``Family.yaml_columns``, ``model_tests``,
``coverage_sql``); codegen only calls them. Like ``families.py``, this module may name
families; nothing else in ``py_tasks/`` outside the cross-check modules does
(``tests/python/test_families.py``).
"""

from __future__ import annotations

from .config import BQX_STATS, REG_STATS, pair_rows

# correlation_bqx: (column stem, doc block) of the term covariances/correlations, in column order
CORR_TERM_STATS = (
    ("cov_quad_lin", "cov_quad_lin"),
    ("cov_resid_quad", "cov_resid_quad"),
    ("cov_resid_lin", "cov_resid_lin"),
    ("corr_quad_lin", "corr_quad_lin"),
    ("corr_resid_quad", "corr_resid_quad"),
    ("corr_resid_lin", "corr_resid_lin"),
)
CORR_RETURN = "w15_bqx_return"  # SPEC 2.4: the series of the cross-pair correlations

# technical: the columns after the moving averages, in table order (the macro
# _technical_columns lists the same; the columns_match_windows test compares them)
TECHNICAL_FIXED = (
    "rsi_14", "macd", "macd_signal", "macd_hist", "stoch_k", "stoch_d",
    "cci_20", "willr_14", "roc_12", "mom_10", "mom_20", "trix_15", "ultosc",
    "adx_14", "plus_di_14", "minus_di_14", "aroon_up_25", "aroon_down_25",
    "atr_14", "natr_14", "trange", "donchian_high_20", "donchian_low_20",
    "keltner_upper_20", "keltner_lower_20", "awesome_osc", "mass_index",
    "vortex_pos_14", "vortex_neg_14", "ulcer_14",
    "obv", "ad", "adosc", "mfi_14", "cmf_20", "force_13", "vpt", "nvi", "eom_14",
    "bqx_rsi_14", "bqx_macd", "bqx_macd_signal", "bqx_macd_hist",
)  # fmt: skip
# bollinger: the sources (column suffix, input column) and the five columns per window
BOLLINGER_SOURCES = (("rate", "rate_index"), ("bqx", "w15_bqx_return"))
BOLLINGER_STATS = ("upper", "middle", "lower", "width", "pct_b")


def related_pairs(pair: str) -> dict[str, list[tuple[str, int]]]:
    """The six base-related and six quote-related pairs of ``pair`` (seed order) with their
    orientation sign: +1 when the shared currency is on the same side (base/base or
    quote/quote) in both pairs, else -1 (SPEC 2.4)."""
    rows = {p: (b, q) for p, b, q in pair_rows()}
    base, quote = rows[pair]
    out: dict[str, list[tuple[str, int]]] = {"base": [], "quote": []}
    for other, (b, q) in rows.items():
        if other == pair:
            continue
        for side, shared, same in (("base", base, b), ("quote", quote, q)):
            if shared in (b, q):
                out[side].append((other, 1 if same == shared else -1))
    return out


def _related_text(related: list[tuple[str, int]]) -> str:
    return ", ".join(f"{r} ({'+' if s > 0 else '-'})" for r, s in related)


def _w_max(vars_: dict, var: str) -> int:
    return max(int(w) for w in vars_[var])


# ----------------------------------------------------------------------------- bqx
def bqx_columns(vars_: dict, pair: str) -> list[dict]:
    cols: list[dict] = [
        {
            "name": "rate_index",
            "description": "{{ doc('col_rate_index') }}",
            "data_tests": ["not_null"],
        }
    ]
    for w in vars_["bqx_windows"]:
        for stat in BQX_STATS:
            cols.append(
                {
                    "name": f"w{w}_bqx_{stat}",
                    "description": f"{{{{ doc('bqx_{stat}') }}}} Window: {w} bars.",
                }
            )
    return cols


def bqx_tests(pair: str, vars_: dict) -> list:
    return [
        {"bqx_momentum_contract": {"arguments": {"windows_var": "bqx_windows"}}},
        {
            "columns_match_windows": {
                "arguments": {
                    "leading_columns": ["ts_utc", "rate_index"],
                    "windows_var": "bqx_windows",
                    "stats": list(BQX_STATS),
                    "pattern": "w{w}_bqx_{stat}",
                }
            }
        },
        {
            "one_row_per_source_bar": {
                "arguments": {"source": "ref('rate_index')", "pair": pair}
            }
        },
    ]


def bqx_coverage_sql(pair: str, vars_: dict) -> str:
    w = _w_max(vars_, "bqx_windows")
    return (
        f"select ts_utc, w{w}_bqx_return as feature, row_number() over (order by ts_utc) > {w}"
        f" as past_warmup from {{{{ ref('bqx_{pair}') }}}}"
    )


# ----------------------------------------------------------------------------- reg_rate, reg_bqx
def _reg_columns(family: str, y: str, vars_: dict) -> list[dict]:
    cols: list[dict] = [{"name": y, "description": f"{{{{ doc('reg_y_{family}') }}}}"}]
    for w in vars_["reg_windows"]:
        for stat in REG_STATS:
            cols.append(
                {
                    "name": f"w{w}_{stat}",
                    "description": f"{{{{ doc('reg_{stat}') }}}} Window: {w} bars.",
                }
            )
    return cols


def _reg_tests(y: str, source: dict) -> list:
    return [
        {"reg_terms_contract": {"arguments": {"y_column": y, "windows_var": "reg_windows"}}},
        {
            "columns_match_windows": {
                "arguments": {
                    "leading_columns": ["ts_utc", y],
                    "windows_var": "reg_windows",
                    "stats": list(REG_STATS),
                    "pattern": "w{w}_{stat}",
                }
            }
        },
        {"one_row_per_source_bar": {"arguments": source}},
    ]


def reg_rate_columns(vars_: dict, pair: str) -> list[dict]:
    return _reg_columns("reg_rate", "rate_index", vars_)


def reg_rate_tests(pair: str, vars_: dict) -> list:
    return _reg_tests("rate_index", {"source": "ref('rate_index')", "pair": pair})


def reg_rate_coverage_sql(pair: str, vars_: dict) -> str:
    w_max = _w_max(vars_, "reg_windows")
    return (
        f"select ts_utc, w{w_max}_prediction as feature, row_number() over (order by ts_utc) > "
        f"{w_max - 1} as past_warmup from {{{{ ref('reg_rate_{pair}') }}}}"
    )


def reg_bqx_columns(vars_: dict, pair: str) -> list[dict]:
    return _reg_columns("reg_bqx", vars_["reg_bqx_source_column"], vars_)


def reg_bqx_tests(pair: str, vars_: dict) -> list:
    return _reg_tests(vars_["reg_bqx_source_column"], {"source": f"ref('bqx_{pair}')"})


def reg_bqx_coverage_sql(pair: str, vars_: dict) -> str:
    # warm-up: the source column's own warm-up plus W - 1 bars
    w_max = _w_max(vars_, "reg_windows")
    first = (
        f"(select min(ts_utc) from {{{{ ref('reg_bqx_{pair}') }}}} "
        f"where {vars_['reg_bqx_source_column']} is not null)"
    )
    return (
        f"select ts_utc, w{w_max}_prediction as feature, count(*) filter (where ts_utc >= {first}) "
        f"over (order by ts_utc) > {w_max - 1} as past_warmup "
        f"from {{{{ ref('reg_bqx_{pair}') }}}}"
    )


# ----------------------------------------------------------------------------- correlation_bqx
def correlation_columns(vars_: dict, pair: str) -> list[dict]:
    related = related_pairs(pair)
    cols: list[dict] = [{"name": CORR_RETURN, "description": "{{ doc('corr_pair_return') }}"}]
    for w in vars_["term_cov_windows"]:
        for stem, doc in CORR_TERM_STATS:
            cols.append(
                {
                    "name": f"{stem}_bqx_{w}min",
                    "description": f"{{{{ doc('{doc}') }}}} Window: the last {w} rows with w{w}_ terms.",
                }
            )
    for w in vars_["pair_corr_windows"]:
        for side in ("base", "quote"):
            cols.append(
                {
                    "name": f"corr_{side}_pairs_{w}min",
                    "description": f"{{{{ doc('corr_{side}_pairs') }}}} Window: the last {w} joined rows. "
                    f"{side.capitalize()}-related pairs of {pair} (sign): {_related_text(related[side])}.",
                }
            )
    for side in ("base", "quote"):
        cols.append(
            {
                "name": f"rel_strength_{side}",
                "description": f"{{{{ doc('rel_strength_{side}') }}}} {side.capitalize()}-related pairs of "
                f"{pair} (sign): {_related_text(related[side])}.",
            }
        )
    return cols


def correlation_tests(pair: str, vars_: dict) -> list:
    return [
        {
            "correlation_bqx_contract": {
                "arguments": {
                    "return_column": CORR_RETURN,
                    "term_windows_var": "term_cov_windows",
                    "pair_windows_var": "pair_corr_windows",
                }
            }
        },
        {"one_row_per_source_bar": {"arguments": {"source": f"ref('reg_bqx_{pair}')"}}},
    ]


# ----------------------------------------------------------------------------- technical, bollinger
def technical_column_names(vars_: dict) -> list[str]:
    """The technical family's indicator columns, in table order."""
    ma = [int(w) for w in vars_["ma_windows"]]
    return [f"sma_{w}" for w in ma] + [f"ema_{w}" for w in ma] + list(TECHNICAL_FIXED)


def technical_columns(vars_: dict, pair: str = "") -> list[dict]:
    cols: list[dict] = [
        {"name": "rate_index", "description": "{{ doc('col_rate_index') }} The close of the bar the indicators read.",
         "data_tests": ["not_null"]}
    ]
    for name in technical_column_names(vars_):
        stem, _, period = name.rpartition("_")
        if stem in ("sma", "ema"):
            text = f"{{{{ doc('tech_{stem}') }}}} Window: {period} bars."
        else:
            text = f"{{{{ doc('tech_{name}') }}}}"
        cols.append({"name": name, "description": text})
    return cols


def bollinger_column_names(vars_: dict) -> list[str]:
    """The bollinger family's band columns, in table order."""
    return [
        f"bb_{src}_{w}_{stat}"
        for w in (int(w) for w in vars_["bollinger_windows"])
        for src, _ in BOLLINGER_SOURCES
        for stat in BOLLINGER_STATS
    ]


def bollinger_columns(vars_: dict, pair: str = "") -> list[dict]:
    cols: list[dict] = [
        {"name": "rate_index", "description": "{{ doc('col_rate_index') }}", "data_tests": ["not_null"]},
        {"name": CORR_RETURN, "description": "{{ doc('bb_bqx_input') }}"},
    ]
    for w in (int(w) for w in vars_["bollinger_windows"]):
        for src, column in BOLLINGER_SOURCES:
            for stat in BOLLINGER_STATS:
                cols.append(
                    {
                        "name": f"bb_{src}_{w}_{stat}",
                        "description": f"{{{{ doc('bb_{stat}') }}}} Series: {column}; window: {w} bars.",
                    }
                )
    return cols


def _indicator_tests(family: str, pair: str, leading: list[str], trailing: list[str]) -> list:
    return [
        {f"{family}_contract": {"arguments": {"momentum": f"ref('bqx_{pair}')"}}},
        {
            "columns_match_windows": {
                # a short name: the default one spells out all 50-odd columns
                "name": f"columns_match_{family}_{pair}",
                "arguments": {
                    "leading_columns": ["ts_utc", "rate_index"] + leading,
                    "windows_var": "ma_windows",
                    "stats": [],
                    "pattern": "",
                    "trailing_columns": trailing,
                }
            }
        },
        {"one_row_per_source_bar": {"arguments": {"source": "ref('rate_index')", "pair": pair}}},
    ]


def technical_tests(pair: str, vars_: dict) -> list:
    return _indicator_tests("technical", pair, [], technical_column_names(vars_))


def bollinger_tests(pair: str, vars_: dict) -> list:
    return _indicator_tests("bollinger", pair, [CORR_RETURN], bollinger_column_names(vars_))
