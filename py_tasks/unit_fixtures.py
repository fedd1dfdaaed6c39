"""Expected values for the macros' dbt unit tests, computed with numpy.

dbt unit tests compare rows exactly, so the macros are tested through small
wrapper models in ``models/unit_fixtures/`` that call the macro on a tiny input and
round every float to ``DIGITS`` decimals; the expectations below are numpy's values
rounded the same way (the two agree to ~1e-15, far inside the rounding step).
The series include a flat stretch (SS_tot = 0), a jump, and odd window lengths
that exercise uneven block merges. Written by ``bqx codegen`` (checked by
``--check``); run ``bqx codegen`` after changing anything here.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from .config import BQX_STATS, REG_STATS

DIGITS = 9
FOLDER = Path("models") / "unit_fixtures"
REG_WINDOWS = (3, 5, 6, 9)  # base 1: 2 = 1+1, 3 = 2+1, 5 = 3+2, 6 = 3+3, 9 = 6+3
BQX_WINDOWS = (2, 3, 4)
T0 = datetime(2024, 7, 1, tzinfo=timezone.utc)


def series() -> np.ndarray:
    """14 values: curved, then flat (exactly), then a jump and a NULL-free tail."""
    return np.array([1.0, 1.5, 2.25, 2.0, 3.5, 3.5, 3.5, 3.5, 3.5, 3.5, 4.75, 2.125, 2.5, 3.0])


def _ts(i: int) -> str:
    # a weekend-like gap after bar 6: windows count bars, not minutes
    minutes = i + (2 * 24 * 60 if i > 6 else 0)
    return (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%d %H:%M:%S+00")


def _r(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    out = round(float(value), DIGITS)
    return 0.0 if out == 0 else out


def reg_expected(y: np.ndarray, windows=REG_WINDOWS) -> list[dict]:
    rows = []
    for t in range(len(y)):
        row: dict = {"ts_utc": _ts(t), "y": float(y[t])}
        for w in windows:
            vals: dict[str, float | None] = dict.fromkeys(REG_STATS)
            if t >= w - 1:
                win = y[t - w + 1 : t + 1]
                x = np.arange(w, dtype=float)
                a2, a1, a0 = np.polyfit(x, win, 2)
                fit = (a2 * x + a1) * x + a0
                ss_res = float(((win - fit) ** 2).sum())
                ss_tot = float(((win - win.mean()) ** 2).sum())
                xe = w - 1
                pred = a2 * xe * xe + a1 * xe + a0
                vals = {
                    "quadratic_term": a2 * xe * xe,
                    "linear_term": a1 * xe,
                    "constant_term": a0,
                    "prediction": pred,
                    "residual": win[-1] - pred,
                    "r2": 1 - ss_res / ss_tot if ss_tot > 0 else 0.0,
                    "rmse": np.sqrt(ss_res / w),
                }
            for stat in REG_STATS:
                row[f"w{w}_{stat}"] = _r(vals[stat])
        rows.append(row)
    return rows


def bqx_expected(p: np.ndarray, windows=BQX_WINDOWS) -> list[dict]:
    rows = []
    for t in range(len(p)):
        row: dict = {"ts_utc": _ts(t), "p": float(p[t])}
        for w in windows:
            vals: dict[str, float | None] = dict.fromkeys(BQX_STATS)
            if t >= w:
                r = (p[t - w : t][::-1] - p[t]) / p[t]
                vals = {
                    "return": r.sum(),
                    "max": r.max(),
                    "min": r.min(),
                    "avg": r.mean(),
                    "stdev": r.std(ddof=1),
                    "endpoint": (p[t - w] - p[t]) / p[t],
                }
            for stat in BQX_STATS:
                row[f"w{w}_bqx_{stat}"] = _r(vals[stat])
        rows.append(row)
    return rows


CORR_TERM_WINDOW = 3
CORR_PAIR_WINDOW = 3
CORR_SIGNS = {"base": ("euraud", 1), "quote": ("usdjpy", -1)}  # for eurusd


def corr_inputs() -> dict[str, list[dict]]:
    """reg_bqx terms and w15 returns of eurusd, euraud (base side, +1, with a gap) and
    usdjpy (quote side, -1), 10 bars; the pair's first return is NULL (warm-up)."""
    q = [0.5, 0.25, 1.0, -0.5, 0.75, 2.0, 1.25, -1.0, 0.0, 0.5]
    lin = [1.0, 0.0, -0.5, 0.25, 1.5, -1.25, 0.75, 2.0, -0.75, 0.125]
    res = [0.125, -0.25, 0.5, 0.0, -1.0, 0.375, 1.25, -0.5, 0.25, -0.125]
    p = [None, 0.3, -0.2, 0.5, 0.1, -0.4, 0.6, 0.2, -0.1, 0.4]
    base = [0.1, 0.2, -0.3, 0.4, None, -0.2, 0.5, 0.1, 0.0, 0.3]
    quote = [0.2, -0.1, 0.3, -0.6, 0.2, 0.5, -0.3, -0.2, 0.4, -0.5]
    n = len(q)
    terms = [
        {
            "ts_utc": _ts(i),
            "w15_bqx_return": p[i],
            "w3_quadratic_term": q[i] if i >= 2 else None,
            "w3_linear_term": lin[i] if i >= 2 else None,
            "w3_residual": res[i] if i >= 2 else None,
        }
        for i in range(n)
    ]
    series = {
        name: [
            {"ts_utc": _ts(i), "w15_bqx_return": v[i]} for i in range(n) if name != "base" or i != 4
        ]
        for name, v in (("pair", p), ("base", base), ("quote", quote))
    }
    return {"terms": terms, **series}


def corr_expected() -> list[dict]:
    inputs = corr_inputs()
    terms = inputs["terms"]
    w = CORR_TERM_WINDOW
    rows = []
    returns = {
        name: {r["ts_utc"]: r["w15_bqx_return"] for r in inputs[name]}
        for name in ("pair", "base", "quote")
    }
    for i, row in enumerate(terms):
        out: dict = {"ts_utc": row["ts_utc"]}
        window = terms[max(0, i - w + 1) : i + 1]
        full = len(window) == w and all(r["w3_quadratic_term"] is not None for r in window)
        cols = {"quad": "w3_quadratic_term", "lin": "w3_linear_term", "resid": "w3_residual"}
        for name, (x, y) in {
            "quad_lin": ("quad", "lin"),
            "resid_quad": ("resid", "quad"),
            "resid_lin": ("resid", "lin"),
        }.items():
            cov = corr = None
            if full:
                xs = np.array([r[cols[x]] for r in window])
                ys = np.array([r[cols[y]] for r in window])
                cov = float(np.cov(xs, ys, ddof=1)[0, 1])
                if xs.std() > 0 and ys.std() > 0:
                    corr = float(np.corrcoef(xs, ys)[0, 1])
            out[f"cov_{name}_bqx_{w}min"] = _r(cov)
            out[f"corr_{name}_bqx_{w}min"] = _r(corr)
        ts, mine = row["ts_utc"], returns["pair"][row["ts_utc"]]
        for side, (_, sign) in CORR_SIGNS.items():
            other = returns[side]
            corr = rel = None
            if other.get(ts) is not None and mine is not None:
                joined = [
                    (returns["pair"][t], sign * other[t])
                    for t in sorted(other)
                    if t <= ts and other[t] is not None and returns["pair"].get(t) is not None
                ]
                last = np.array(joined[-CORR_PAIR_WINDOW:])
                if (
                    len(joined) >= CORR_PAIR_WINDOW
                    and last[:, 0].std() > 0
                    and last[:, 1].std() > 0
                ):
                    corr = float(np.corrcoef(last[:, 0], last[:, 1])[0, 1])
                rel = mine - sign * other[ts]
            out[f"corr_{side}_pairs_{CORR_PAIR_WINDOW}min"] = _r(corr)
            out[f"rel_strength_{side}"] = _r(rel)
        rows.append(out)
    return rows


def _wrapper(macro_call: str, columns: list[str], keep: list[str]) -> str:
    rounded = ",\n    ".join(
        f"round({c}::numeric, {DIGITS})::double precision as {c}" for c in columns
    )
    return (
        "-- generated by `bqx codegen` from py_tasks/unit_fixtures.py; do not edit\n"
        "-- A unit-test wrapper: the macro on a tiny input, floats rounded so that dbt's\n"
        "-- exact row comparison can check numpy's values.\n"
        f"with computed as (\n\n    {macro_call}\n\n),\n\nfinal as (\n\n    select\n    "
        + ",\n    ".join(keep)
        + ",\n    "
        + rounded
        + "\n    from computed\n\n)\n\nselect * from final\n"
    )


def _yaml_rows(rows: list[dict]) -> str:
    def fmt(v):
        if v is None:
            return "null"
        if isinstance(v, str):
            return f'"{v}"'
        return repr(float(v))

    return "\n".join(
        "          - {" + ", ".join(f"{k}: {fmt(v)}" for k, v in r.items()) + "}" for r in rows
    )


def render() -> dict[Path, str]:
    y = series()
    reg_cols = [f"w{w}_{s}" for w in REG_WINDOWS for s in REG_STATS]
    bqx_cols = [f"w{w}_bqx_{s}" for w in BQX_WINDOWS for s in BQX_STATS]
    inputs = [{"ts_utc": _ts(i), "y": float(v)} for i, v in enumerate(y)]
    prices = [{"ts_utc": _ts(i), "p": float(v)} for i, v in enumerate(y)]
    files = {
        FOLDER / "unit_series.sql": (
            "-- generated by `bqx codegen` from py_tasks/unit_fixtures.py; do not edit\n"
            "-- Empty typed input of the unit-test wrappers (unit tests give the rows).\n"
            "select\n    null::timestamptz as ts_utc,\n    null::double precision as y,\n"
            "    null::double precision as p\nwhere false\n"
        ),
        FOLDER / "unit_reg_terms.sql": _wrapper(
            "select * from ({{ reg_terms(source=ref('unit_series'), y_column='y', windows=["
            + ", ".join(map(str, REG_WINDOWS))
            + "], incremental=false) }}) as t",
            reg_cols,
            ["ts_utc", "y"],
        ),
        FOLDER / "unit_bqx_momentum.sql": _wrapper(
            "select * from ({{ bqx_momentum(source=ref('unit_series'), price_column='p', windows=["
            + ", ".join(map(str, BQX_WINDOWS))
            + "], incremental=false) }}) as t",
            bqx_cols,
            ["ts_utc", "p"],
        ),
    }
    yml = [
        "# generated by `bqx codegen` from py_tasks/unit_fixtures.py; do not edit",
        "version: 2",
        "",
        "models:",
        "  - name: unit_series",
        '    description: "Empty typed input of the macro unit-test wrappers (the unit tests give rows)."',
        "    columns:",
        '      - {name: ts_utc, description: "Bar time of a unit-test row.", data_tests: [unique]}',
        '      - {name: y, description: "Series fitted by reg_terms in its unit test."}',
        '      - {name: p, description: "Price series of bqx_momentum in its unit test."}',
    ]
    for name, cols, first in (
        ("unit_reg_terms", reg_cols, "y"),
        ("unit_bqx_momentum", bqx_cols, "p"),
    ):
        yml += [
            f"  - name: {name}",
            f'    description: "Unit-test wrapper of the {name[5:]} macro: its output on a tiny series, '
            f'floats rounded to {DIGITS} decimals."',
            "    columns:",
            '      - {name: ts_utc, description: "Bar time.", data_tests: [unique, not_null]}',
            f'      - {{name: {first}, description: "The input series."}}',
        ] + [f'      - {{name: {c}, description: "Macro output, rounded."}}' for c in cols]
    yml += [
        "",
        "unit_tests:",
        "  - name: reg_terms_matches_numpy_polyfit",
        "    description: >",
        "      reg_terms on 14 bars (curved, exactly flat, a jump; a time gap) with windows",
        f"      {list(REG_WINDOWS)} equals numpy.polyfit's terms, r2 and rmse (rounded to {DIGITS} decimals),",
        "      with NULLs exactly during each window's warm-up and r2 = 0 on the flat windows.",
        "    model: unit_reg_terms",
        "    given:",
        "      - input: ref('unit_series')",
        "        rows:",
        _yaml_rows(inputs),
        "    expect:",
        "      rows:",
        _yaml_rows(reg_expected(y)),
        "  - name: bqx_momentum_matches_numpy",
        "    description: >",
        f"      bqx_momentum on the same 14 bars with windows {list(BQX_WINDOWS)} equals numpy's backward",
        "      returns (sum, max, min, mean, sample stdev, endpoint), NULL during the first W bars.",
        "    model: unit_bqx_momentum",
        "    given:",
        "      - input: ref('unit_series')",
        "        rows:",
        _yaml_rows(prices),
        "    expect:",
        "      rows:",
        _yaml_rows(bqx_expected(y)),
    ]
    # bqx_correlations: typed empty inputs, a wrapper, and the numpy expectation
    header = "-- generated by `bqx codegen` from py_tasks/unit_fixtures.py; do not edit\n"
    files[FOLDER / "unit_corr_terms.sql"] = (
        header + "-- Empty typed input: a reg_bqx-like model for the bqx_correlations unit test.\n"
        "select\n    null::timestamptz as ts_utc,\n    null::double precision as w15_bqx_return,\n"
        "    null::double precision as w3_quadratic_term,\n    null::double precision as w3_linear_term,\n"
        "    null::double precision as w3_residual\nwhere false\n"
    )
    for name in ("pair", "base", "quote"):
        files[FOLDER / f"unit_corr_{name}.sql"] = (
            header
            + f"-- Empty typed input: the {name} series' w15_bqx_return for the bqx_correlations unit test.\n"
            "select\n    null::timestamptz as ts_utc,\n    null::double precision as w15_bqx_return\nwhere false\n"
        )
    corr_cols = [c for c in corr_expected()[0] if c != "ts_utc"]
    (b_pair, b_sign), (q_pair, q_sign) = CORR_SIGNS["base"], CORR_SIGNS["quote"]
    files[FOLDER / "unit_bqx_correlations.sql"] = _wrapper(
        "select * from ({{ bqx_correlations(source=ref('unit_corr_terms'), momentum=ref('unit_corr_pair'),"
        " pair='eurusd',"
        f" base_related=[{{'pair': '{b_pair}', 'momentum': ref('unit_corr_base'), 'sign': {b_sign}}}],"
        f" quote_related=[{{'pair': '{q_pair}', 'momentum': ref('unit_corr_quote'), 'sign': {q_sign}}}],"
        f" term_windows=[{CORR_TERM_WINDOW}], pair_windows=[{CORR_PAIR_WINDOW}], incremental=false) }}}}) as t",
        corr_cols,
        ["ts_utc"],
    )
    yml.insert(
        yml.index("unit_tests:") - 1,
        "\n".join(
            [
                f"  - name: unit_corr_{name}"
                + "\n"
                + f'    description: "Empty typed input ({name} series) of the bqx_correlations unit test."'
                + "\n    columns:\n"
                + '      - {name: ts_utc, description: "Bar time.", data_tests: [unique]}'
                + "\n"
                + '      - {name: w15_bqx_return, description: "BQX return of the series."}'
                for name in ("pair", "base", "quote")
            ]
            + [
                '  - name: unit_corr_terms\n    description: "Empty typed input (reg_bqx-like terms) of the bqx_correlations unit test."\n'
                "    columns:\n"
                '      - {name: ts_utc, description: "Bar time.", data_tests: [unique]}\n'
                '      - {name: w15_bqx_return, description: "BQX return of the pair."}\n'
                '      - {name: w3_quadratic_term, description: "Quadratic term (W = 3)."}\n'
                '      - {name: w3_linear_term, description: "Linear term (W = 3)."}\n'
                '      - {name: w3_residual, description: "Residual (W = 3)."}',
                "  - name: unit_bqx_correlations\n"
                f'    description: "Unit-test wrapper of the bqx_correlations macro, floats rounded to {DIGITS} decimals."\n'
                "    columns:\n"
                '      - {name: ts_utc, description: "Bar time.", data_tests: [unique, not_null]}\n'
                + "\n".join(
                    f'      - {{name: {c}, description: "Macro output, rounded."}}'
                    for c in corr_cols
                ),
            ]
        ),
    )
    inputs = corr_inputs()
    yml += [
        "  - name: bqx_correlations_matches_numpy",
        "    description: >",
        "      bqx_correlations for eurusd with euraud (base side, +1, one missing bar) and usdjpy",
        f"      (quote side, -1): covariances and correlations of the W = {CORR_TERM_WINDOW} terms (np.cov ddof 1,",
        f"      np.corrcoef) and the pair correlations over {CORR_PAIR_WINDOW} rows joined on ts_utc, with",
        "      relative strengths, as numpy computes them; NULL where the contract says.",
        "    model: unit_bqx_correlations",
        "    given:",
        "      - input: ref('unit_corr_terms')",
        "        rows:",
        _yaml_rows(inputs["terms"]),
    ]
    for name in ("pair", "base", "quote"):
        yml += [
            f"      - input: ref('unit_corr_{name}')",
            "        rows:",
            _yaml_rows(inputs[name]),
        ]
    yml += ["    expect:", "      rows:", _yaml_rows(corr_expected())]
    files[FOLDER / "_unit_fixtures__models.yml"] = "\n".join(yml) + "\n"
    return files
