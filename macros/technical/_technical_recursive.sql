{#-
    _technical_recursive: the EMA-type and Wilder indicators of technical_{pair},
    exact and set-based.

    Method. Every recursion here is a first-order linear recurrence
    e_t = β·e_(t−1) + y_t (an EMA: β = 1 − α, y_t = α·x_t; Wilder's average:
    β = (N−1)/N, y_t = x_t/N; Wilder's running sum of ADX/DI: y_t = x_t). Its
    solution is e_t = Σ_(j≥0) β^j·y_(t−j). The weighted sum over the last n rows,
    S_n(t) = Σ_(j<n) β^j·y_(t−j), grows by a factor R in one pass that reads R − 1
    lags of the same column: S_(R·m)(t) = Σ_(i<R) β^(i·m)·S_m(t − i·m) (0 before the
    first row read). A recursion runs a few such passes (radix 4, the last ones
    lowered to 3 or 2 where that still suffices: `_technical_recursive_plan`); its window
    n (the product of its radices) is the least with β^n ≤ tol = 1e-17, i.e. the
    dropped tail weighs at most 1e-17 of what is kept: below float precision
    (2^-53 ≈ 1.1e-16), so the sum is the recursion's value to the last bits (the
    errors left are rounding), and the same in a full and an incremental run.
    (tol = 1e-13 would save 3 of the 18 passes and still be far inside the
    tolerances, but would no longer be exact to the last bits.) For the ratio
    outputs whose numerator and denominator both decay during a flat stretch (RSI,
    DI, the mass index) the window also spans 800 more rows, so a flat stretch of
    up to 800 bars keeps the reference's ratio (beyond that the sums reach exact 0
    where the reference still holds tiny values). The reference's seed is part of
    the input: y at the seed bar s is the reference's first value (TA-Lib: the SMA
    of the first N inputs, summed in bar order like TA-Lib does; ADOSC: the first
    input), y = 0 before it, so e_t = S_n(t) from s on; the output is NULL before s.

    Passes. One pass is one CTE whose window functions all run over
    `window w as (order by ts_utc)` (the seeds' running sums too: ts_utc is unique,
    so its default frame is the rows up to the current one), i.e. one WindowAgg
    node over sorted rows, O(rows). The recursions still in progress travel in one
    float8[] column w<p>, first in the row, so each lag fetches one earlier row for
    all of them (one lag() call per offset, shared by the array's elements); a
    recursion leaves it in the pass that completes it, into that pass's array f<p>
    (one column however many it holds), carried to the end, so later passes
    compute only what is left. A chain (MACD's signal of the MACD line, TRIX's EMA
    of EMA of EMA, ADX of DX, the mass index's EMA of EMA) defines the next
    recursion's input in the pass after its source's last, so the chains' passes
    overlap the bar-level recursions' later ones; the mass index's 25-bar sum of
    EMA1/EMA2 is a sum of 5 lags of 5-bar sums in the passes after its EMA2 (a ratio
    is 1 where EMA2 = 0, as TA-Lib's MASSI). With the default windows: 18 pass CTEs (the longest chain
    is TRIX's three EMAs, each a few passes, plus their defining passes), run on a narrow row (ts_utc,
    rn, rn_b, c and the arrays), joined back to the input at the end. Measured
    alternatives: radix 2 and 8 and a cost-model mix of 4, 3 and 2 were slower,
    radix 3 no faster; so were scalar columns for the finished recursions
    (carrying them costs per pass) and zero-padding small arrays to a 4-byte header.

    Exact: each output is the reference's recursion and seed, evaluated as a sum
    of n terms in a fixed order; the differences from the reference are rounding
    (a few ulps of the sum) and the dropped tail (≤ 1e-17 relative).

    Lookback: an output at bar t reads bars t − D .. t, D = the sum of the chained
    windows (n − 1 each) plus the one-bar lags (previous close/high/low) and, for
    the mass index, its 25-bar sum. `_technical_recursive_lookback`
    returns D + the largest seed bar + a margin, so an incremental run reads every
    bar a new row depends on, and no bar it depends on is a seed bar (whose input
    needs the history's first rows) unless the read starts at the pair's first
    bar: every new row is computed from the same inputs in the same order as in a
    full refresh, bit for bit.
-#}

{#- The recursions: name, β, the radices of its passes, its defining pass (0 = from
    the bars, else the pass after its inputs' last) and last pass, and the span of
    bars its value reads (its window plus its inputs' spans). tol: the dropped
    tail's weight relative to what is kept (see the method). -#}
{% macro _technical_recursive_plan(ma_windows) %}
    {%- set flat_margin = 800 -%}
    {%- set tol = 1e-17 -%}
    {#- radix 4: measured as fast as 3 (with fewer passes and a shorter lookback),
        faster than 2 and 8 -#}
    {%- set max_radix = 4 -%}
    {%- set plan = [] -%}
    {%- set specs = [] -%}
    {%- for w in ma_windows %}{% do specs.append({'name': 'ema' ~ w, 'beta': 1 - 2 / (w + 1), 'deps': [], 'ratio': false}) %}{% endfor -%}
    {%- if 20 not in ma_windows %}{% do specs.append({'name': 'ema20', 'beta': 1 - 2 / 21, 'deps': [], 'ratio': false}) %}{% endif -%}
    {%- do specs.extend([
        {'name': 'f12', 'beta': 1 - 2 / 13, 'deps': [], 'ratio': false},
        {'name': 's26', 'beta': 1 - 2 / 27, 'deps': [], 'ratio': false},
        {'name': 'sig', 'beta': 1 - 2 / 10, 'deps': ['f12', 's26'], 'ratio': false},
        {'name': 'tx1', 'beta': 1 - 2 / 16, 'deps': [], 'ratio': false},
        {'name': 'tx2', 'beta': 1 - 2 / 16, 'deps': ['tx1'], 'ratio': false},
        {'name': 'tx3', 'beta': 1 - 2 / 16, 'deps': ['tx2'], 'ratio': false},
        {'name': 'gain', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'loss', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'atr', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': false},
        {'name': 'atr20', 'beta': 1 - 1 / 20, 'deps': [], 'ratio': false},
        {'name': 'pdm', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'mdm', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'trs', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'adx', 'beta': 1 - 1 / 14, 'deps': ['pdm', 'mdm', 'trs'], 'ratio': false},
        {'name': 'ms1', 'beta': 1 - 2 / 10, 'deps': [], 'ratio': true},
        {'name': 'ms2', 'beta': 1 - 2 / 10, 'deps': ['ms1'], 'ratio': true},
        {'name': 'adf', 'beta': 1 - 2 / 4, 'deps': [], 'ratio': false},
        {'name': 'ads', 'beta': 1 - 2 / 11, 'deps': [], 'ratio': false},
        {'name': 'frc', 'beta': 1 - 2 / 14, 'deps': [], 'ratio': false},
        {'name': 'bgain', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'bloss', 'beta': 1 - 1 / 14, 'deps': [], 'ratio': true},
        {'name': 'bf12', 'beta': 1 - 2 / 13, 'deps': [], 'ratio': false},
        {'name': 'bs26', 'beta': 1 - 2 / 27, 'deps': [], 'ratio': false},
        {'name': 'bsig', 'beta': 1 - 2 / 10, 'deps': ['bf12', 'bs26'], 'ratio': false},
    ]) -%}
    {%- set by_name = {} -%}
    {%- for s in specs -%}
        {#- window n: enough when β^(n − extra) ≤ tol. Passes: the fewest of radix
            max_radix that reach it, then each radix, last first, lowered while the
            window still reaches it. -#}
        {%- set extra = flat_margin if s.ratio else 0 -%}
        {%- set ns = namespace(p=0, rs=[], n=1) -%}
        {%- for p in range(1, 40) -%}
            {%- if ns.p == 0 and (max_radix ** p) > extra and (s.beta ** ((max_radix ** p) - extra)) <= tol -%}
                {%- set ns.p = p -%}
            {%- endif -%}
        {%- endfor -%}
        {%- set ns.rs = [max_radix] * ns.p -%}
        {%- set ns.n = max_radix ** ns.p -%}
        {%- for i in range(ns.p - 1, -1, -1) -%}
            {%- for _ in range(max_radix - 2) -%}
                {%- set lower = (ns.n // ns.rs[i]) * (ns.rs[i] - 1) -%}
                {%- if ns.rs[i] > 2 and lower > extra and (s.beta ** (lower - extra)) <= tol -%}
                    {%- set ns.rs = ns.rs[:i] + [ns.rs[i] - 1] + ns.rs[i + 1:] -%}
                    {%- set ns.n = lower -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- set ns.d = 0 -%}
        {%- set ns.span = 0 -%}
        {%- for dep in s.deps -%}
            {%- set p = by_name[dep] -%}
            {%- if p.done + 1 > ns.d %}{% set ns.d = p.done + 1 %}{% endif -%}
            {%- if p.span > ns.span %}{% set ns.span = p.span %}{% endif -%}
        {%- endfor -%}
        {%- set item = {'name': s.name, 'beta': s.beta, 'radices': ns.rs, 'def': ns.d, 'done': ns.d + (ns.rs | length),
                        'span': ns.span + ns.n - 1} -%}
        {%- do by_name.update({s.name: item}) -%}
        {%- do plan.append(item) -%}
    {%- endfor -%}
    {{- return(plan) -}}
{% endmacro %}


{% macro _technical_recursive_lookback(ma_windows) %}
    {%- set plan = _technical_recursive_plan(ma_windows) -%}
    {%- set ns = namespace(span=0) -%}
    {%- for s in plan %}{% if s.span > ns.span %}{% set ns.span = s.span %}{% endif %}{% endfor -%}
    {#- + 1 bar of lags in the inputs, + 1 for TRIX's previous value, + 24 for the
        mass index's 25-bar sum; seeds: the largest is EMA(max W) at bar W − 1, the
        others below bar 100 (the BQX series starts 15 bars in, its seeds by 33). -#}
    {%- set seed = [(ma_windows | max) - 1, 100] | max -%}
    {{- return(ns.span + 1 + 1 + 24 + seed + 2) -}}
{% endmacro %}


{#- The input y of a recursion at its defining pass (SQL over the previous CTE). -#}
{% macro _technical_recursive_input(name, ma_windows, r) %}
    {%- set cum = 'over w' -%}
    {%- if name.startswith('ema') -%}
        {%- set w = name[3:] | int -%}
        case when rn = {{ w - 1 }} then sum(c) {{ cum }} / {{ w }}.0 when rn > {{ w - 1 }} then {{ 2 / (w + 1) }}::float8 * c else 0 end
    {%- elif name == 'f12' -%}
        case when rn = 25 then sum(case when rn >= 14 then c end) {{ cum }} / 12.0 when rn > 25 then {{ 2 / 13 }}::float8 * c else 0 end
    {%- elif name == 's26' -%}
        case when rn = 25 then sum(c) {{ cum }} / 26.0 when rn > 25 then {{ 2 / 27 }}::float8 * c else 0 end
    {%- elif name == 'sig' -%}
        case when rn = 33 then sum(case when rn >= 25 then {{ r.f12 }} - {{ r.s26 }} end) {{ cum }} / 9.0 when rn > 33 then {{ 2 / 10 }}::float8 * ({{ r.f12 }} - {{ r.s26 }}) else 0 end
    {%- elif name == 'tx1' -%}
        case when rn = 14 then sum(c) {{ cum }} / 15.0 when rn > 14 then {{ 2 / 16 }}::float8 * c else 0 end
    {%- elif name == 'tx2' -%}
        case when rn = 28 then sum(case when rn >= 14 then {{ r.tx1 }} end) {{ cum }} / 15.0 when rn > 28 then {{ 2 / 16 }}::float8 * {{ r.tx1 }} else 0 end
    {%- elif name == 'tx3' -%}
        case when rn = 42 then sum(case when rn >= 28 then {{ r.tx2 }} end) {{ cum }} / 15.0 when rn > 42 then {{ 2 / 16 }}::float8 * {{ r.tx2 }} else 0 end
    {%- elif name in ('gain', 'loss', 'bgain', 'bloss') -%}
        {%- set pos = 'rn_b' if name.startswith('b') else 'rn' -%}
        {%- set x = ('x_' ~ name) -%}
        case when {{ pos }} = 14 then sum({{ x }}) {{ cum }} / 14.0 when {{ pos }} > 14 then {{ x }} / 14.0 else 0 end
    {%- elif name == 'atr' -%}
        case when rn = 14 then sum(x_tr) {{ cum }} / 14.0 when rn > 14 then x_tr / 14.0 else 0 end
    {%- elif name == 'atr20' -%}
        case when rn = 20 then sum(x_tr) {{ cum }} / 20.0 when rn > 20 then x_tr / 20.0 else 0 end
    {%- elif name in ('pdm', 'mdm', 'trs') -%}
        {%- set x = 'x_tr' if name == 'trs' else 'x_' ~ name -%}
        case when rn = 13 then sum({{ x }}) {{ cum }} when rn > 13 then {{ x }} else 0 end
    {%- elif name == 'adx' -%}
        case when rn = 27 then sum(case when rn >= 14 then {{ _technical_recursive_dx(r) }} end) {{ cum }} / 14.0
             when rn > 27 then {{ _technical_recursive_dx(r) }} / 14.0 else 0 end
    {%- elif name == 'ms1' -%}
        case when rn = 8 then sum(h - l) {{ cum }} / 9.0 when rn > 8 then {{ 2 / 10 }}::float8 * (h - l) else 0 end
    {%- elif name == 'ms2' -%}
        case when rn = 16 then sum(case when rn >= 8 then {{ r.ms1 }} end) {{ cum }} / 9.0 when rn > 16 then {{ 2 / 10 }}::float8 * {{ r.ms1 }} else 0 end
    {%- elif name in ('adf', 'ads') -%}
        {%- set k = 2 / 4 if name == 'adf' else 2 / 11 -%}
        case when rn = 0 then x_ad else {{ k }}::float8 * x_ad end
    {%- elif name == 'frc' -%}
        case when rn = 13 then sum(x_frc) {{ cum }} / 13.0 when rn > 13 then {{ 2 / 14 }}::float8 * x_frc else 0 end
    {%- elif name == 'bf12' -%}
        case when rn_b = 25 then sum(case when rn_b >= 14 then b end) {{ cum }} / 12.0 when rn_b > 25 then {{ 2 / 13 }}::float8 * b else 0 end
    {%- elif name == 'bs26' -%}
        case when rn_b = 25 then sum(b) {{ cum }} / 26.0 when rn_b > 25 then {{ 2 / 27 }}::float8 * b else 0 end
    {%- elif name == 'bsig' -%}
        case when rn_b = 33 then sum(case when rn_b >= 25 then {{ r.bf12 }} - {{ r.bs26 }} end) {{ cum }} / 9.0 when rn_b > 33 then {{ 2 / 10 }}::float8 * ({{ r.bf12 }} - {{ r.bs26 }}) else 0 end
    {%- endif -%}
{% endmacro %}

{#- Recursion s in pass p: its input y if p is its defining pass, else its step
    S' = S(t) + Σ_(0<i<R) β^(i·m)·S(t − i·m) (stride m, radix R) from the previous
    pass's array (prev: its recursions; a row before the first read gives 0). -#}
{% macro _technical_recursive_term(s, p, prev, ma_windows, r) -%}
    {%- if s.def == p -%}
        coalesce({{ _technical_recursive_input(s.name, ma_windows, r) }}, 0)
    {%- else -%}
        {%- set zero = "'{" ~ (['0'] * (prev | length)) | join(',') ~ "}'::float8[]" -%}
        {%- set j = (prev | map(attribute='name') | list).index(s.name) + 1 -%}
        {%- set step = p - s.def - 1 -%}
        {%- set ms = namespace(m=1) -%}
        {%- for q in range(step) %}{% set ms.m = ms.m * s.radices[q] %}{% endfor -%}
        w{{ p - 1 }}[{{ j }}]
        {%- for i in range(1, s.radices[step]) %} + {{ s.beta ** (i * ms.m) }}::float8 * (lag(w{{ p - 1 }}, {{ i * ms.m }}, {{ zero }}) over w)[{{ j }}]{% endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- TA-Lib's DX from the Wilder sums (0 where TA-Lib skips it: TR sum or DI sum 0). -#}
{% macro _technical_recursive_dx(r) -%}
(case when {{ r.trs }} <> 0 and (100.0 * ({{ r.mdm }} / {{ r.trs }})) + (100.0 * ({{ r.pdm }} / {{ r.trs }})) <> 0
    then 100.0 * (abs((100.0 * ({{ r.mdm }} / {{ r.trs }})) - (100.0 * ({{ r.pdm }} / {{ r.trs }}))) / ((100.0 * ({{ r.mdm }} / {{ r.trs }})) + (100.0 * ({{ r.pdm }} / {{ r.trs }}))))
    else 0 end)
{%- endmacro %}


{% macro _technical_recursive(input, ma_windows) %}
{%- set plan = _technical_recursive_plan(ma_windows) -%}
{%- set ns = namespace(last=0) -%}
{%- set ms2 = plan | selectattr('name', 'eq', 'ms2') | first -%}
{#- the last pass is the last recursion's, and at least the third after the mass
    index's EMA2: the next pass has q = EMA1/EMA2 (column mq), the one after its
    5-bar sums (m5), the third their sum over 25 bars (m25) -#}
{%- set ns.last = ms2.done + 3 -%}
{%- for s in plan %}{% if s.done > ns.last %}{% set ns.last = s.done %}{% endif %}{% endfor -%}
{#- Per pass p: work[p], the recursions its output array w<p> carries into pass p + 1
    (defined by p, not yet done), and fin[p], those it completes, in array f<p>
    carried unchanged to the end (one column however many it holds). r: how a
    completed recursion is read. -#}
{%- set work = [] -%}
{%- set fin = [] -%}
{%- set r = {} -%}
{%- for p in range(0, ns.last + 1) -%}
    {%- do work.append(plan | selectattr('def', 'le', p) | selectattr('done', 'gt', p) | list) -%}
    {%- do fin.append(plan | selectattr('done', 'eq', p) | list) -%}
    {%- for s in fin[p] %}{% do r.update({s.name: 'f' ~ p ~ '[' ~ loop.index ~ ']'}) %}{% endfor -%}
{%- endfor -%},

tr_in as (

    -- the narrow row of the recursions, with the previous bar
    select
        ts_utc,
        rn,
        rn_b,
        c,
        h,
        l,
        v,
        b,
        ad,
        lag(c) over w as c1,
        lag(h) over w as h1,
        lag(l) over w as l1,
        lag(b) over w as b1
    from {{ input }}
    window w as (order by ts_utc)

),

tr_x as (

    -- one-bar inputs: gains and losses (close and BQX), true range, directional
    -- movement (TA-Lib's rules), the AD line, the force term
    select
        ts_utc,
        rn,
        rn_b,
        c,
        h,
        l,
        b,
        case when c - c1 < 0 then 0 else c - c1 end as x_gain,
        case when c - c1 < 0 then c1 - c else 0 end as x_loss,
        case when b - b1 < 0 then 0 else b - b1 end as x_bgain,
        case when b - b1 < 0 then b1 - b else 0 end as x_bloss,
        case when c1 is not null then greatest(h - l, abs(h - c1), abs(l - c1)) end as x_tr,
        case when h - h1 > 0 and h - h1 > l1 - l then h - h1 else 0 end as x_pdm,
        case when l1 - l > 0 and h - h1 < l1 - l then l1 - l else 0 end as x_mdm,
        -- the AD line of _technical_windowed (exact, continued across incremental runs)
        ad as x_ad,
        (c - c1) * v as x_frc
    from tr_in

)
{%- for p in range(0, ns.last + 1) %},

tr_p{{ p }} as (

    {%- set prev = work[p - 1] if p > 0 else [] %}
    -- {{ 'inputs' if p == 0 else 'step ' ~ p }}: {{ (work[p] + fin[p]) | map(attribute='name') | join(', ') }}
    select
        {%- if work[p] %}
        -- first, so that a lag() of it reads only the first column of the earlier row
        array[
            {%- for s in work[p] %}
            {{ _technical_recursive_term(s, p, prev, ma_windows, r) }}{{ ',' if not loop.last }}
            {%- endfor %}
        ]::float8[] as w{{ p }},
        {%- endif %}
        ts_utc,
        rn,
        rn_b,
        c
        {%- for q in range(0, p) if fin[q] %},
        f{{ q }}
        {%- endfor %}
        {%- if fin[p] %},
        array[
            {%- for s in fin[p] %}
            {{ _technical_recursive_term(s, p, prev, ma_windows, r) }}{{ ',' if not loop.last }}
            {%- endfor %}
        ]::float8[] as f{{ p }}
        {%- endif %}
        {%- if p == ms2.done + 1 %},
        -- TA-Lib's MASSI: the ratio is 1 where EMA2 is exactly 0 (before its seed too: unused)
        case when {{ r.ms2 }} = 0 then 1::float8 else {{ r.ms1 }} / {{ r.ms2 }} end as mq
        {%- elif p == ms2.done + 2 %},
        mq + lag(mq, 1) over w + lag(mq, 2) over w + lag(mq, 3) over w + lag(mq, 4) over w as m5
        {%- elif p == ms2.done + 3 %},
        -- NULL before the first row read (an incremental run's first rows, not kept)
        m5 + lag(m5, 5) over w + lag(m5, 10) over w + lag(m5, 15) over w + lag(m5, 20) over w as m25
        {%- elif p > ms2.done + 3 %},
        m25
        {%- endif %}
    from {{ 'tr_x' if p == 0 else 'tr_p' ~ (p - 1) }}
    window w as (order by ts_utc)

)
{%- endfor %},


tr_res as (

    select
        ts_utc,
        {%- for w in ma_windows %}
        case when rn >= {{ w - 1 }} then {{ r['ema' ~ w] }} end as ema_{{ w }},
        {%- endfor %}
        case when rn >= 14 then case when {{ r.gain }} + {{ r.loss }} <> 0 then 100.0 * ({{ r.gain }} / ({{ r.gain }} + {{ r.loss }})) else 0 end end as rsi_14,
        case when rn >= 33 then {{ r.f12 }} - {{ r.s26 }} end as macd,
        case when rn >= 33 then {{ r.sig }} end as macd_signal,
        case when rn >= 33 then ({{ r.f12 }} - {{ r.s26 }}) - {{ r.sig }} end as macd_hist,
        case when rn >= 43 then
            case when lag({{ r.tx3 }}) over w <> 0 then 100.0 * (({{ r.tx3 }} - lag({{ r.tx3 }}) over w) / lag({{ r.tx3 }}) over w) else 0 end
        end as trix_15,
        case when rn >= 27 then {{ r.adx }} end as adx_14,
        case when rn >= 14 then case when {{ r.trs }} <> 0 then 100.0 * ({{ r.pdm }} / {{ r.trs }}) else 0 end end as plus_di_14,
        case when rn >= 14 then case when {{ r.trs }} <> 0 then 100.0 * ({{ r.mdm }} / {{ r.trs }}) else 0 end end as minus_di_14,
        case when rn >= 14 then {{ r.atr }} end as atr_14,
        case when rn >= 14 then case when c <> 0 then ({{ r.atr }} / c) * 100.0 else 0 end end as natr_14,
        case when rn >= 20 then {{ r.ema20 }} + 2 * {{ r.atr20 }} end as keltner_upper_20,
        case when rn >= 20 then {{ r.ema20 }} - 2 * {{ r.atr20 }} end as keltner_lower_20,
        -- TA-Lib's MASSI(9, 25): 25-bar sum of EMA1/EMA2 over bars 16.. (EMA2's seed)
        case when rn >= 40 then m25 end as mass_index,
        case when rn >= 9 then {{ r.adf }} - {{ r.ads }} end as adosc,
        case when rn >= 13 then {{ r.frc }} end as force_13,
        case when rn_b >= 14 then case when {{ r.bgain }} + {{ r.bloss }} <> 0 then 100.0 * ({{ r.bgain }} / ({{ r.bgain }} + {{ r.bloss }})) else 0 end end as bqx_rsi_14,
        case when rn_b >= 33 then {{ r.bf12 }} - {{ r.bs26 }} end as bqx_macd,
        case when rn_b >= 33 then {{ r.bsig }} end as bqx_macd_signal,
        case when rn_b >= 33 then ({{ r.bf12 }} - {{ r.bs26 }}) - {{ r.bsig }} end as bqx_macd_hist
    from tr_p{{ ns.last }}
    window w as (order by ts_utc)

),

tr_out as (

    select
        i.*,
        {%- for w in ma_windows %}
        r.ema_{{ w }},
        {%- endfor %}
        {%- for col in ['rsi_14', 'macd', 'macd_signal', 'macd_hist', 'trix_15', 'adx_14', 'plus_di_14',
            'minus_di_14', 'atr_14', 'natr_14', 'keltner_upper_20', 'keltner_lower_20', 'mass_index', 'adosc',
            'force_13', 'bqx_rsi_14', 'bqx_macd', 'bqx_macd_signal'] %}
        r.{{ col }},
        {%- endfor %}
        r.bqx_macd_hist
    from {{ input }} as i
    inner join tr_res as r on r.ts_utc = i.ts_utc

)
{%- endmacro %}

{#- Per output column: {'first': first bar index with a value, 'series': 'rn' (the
    pair's bars) or 'rn_b' (the BQX series), 'nullable': may be NULL after the
    warm-up (a division by zero), 'lo'/'hi': bounds}. Read by the technical_contract test. -#}
{% macro _technical_recursive_contract(ma_windows) %}
    {%- set contract = {} -%}
    {%- for w in ma_windows %}{% do contract.update({'ema_' ~ w: {'first': w - 1}}) %}{% endfor -%}
    {%- do contract.update({
        'rsi_14': {'first': 14, 'lo': 0, 'hi': 100},
        'macd': {'first': 33},
        'macd_signal': {'first': 33},
        'macd_hist': {'first': 33},
        'trix_15': {'first': 43},
        'adx_14': {'first': 27, 'lo': 0, 'hi': 100},
        'plus_di_14': {'first': 14, 'lo': 0, 'hi': 100},
        'minus_di_14': {'first': 14, 'lo': 0, 'hi': 100},
        'atr_14': {'first': 14},
        'natr_14': {'first': 14},
        'keltner_upper_20': {'first': 20},
        'keltner_lower_20': {'first': 20},
        'mass_index': {'first': 40},
        'adosc': {'first': 9},
        'force_13': {'first': 13},
        'bqx_rsi_14': {'first': 14, 'series': 'rn_b', 'lo': 0, 'hi': 100},
        'bqx_macd': {'first': 33, 'series': 'rn_b'},
        'bqx_macd_signal': {'first': 33, 'series': 'rn_b'},
        'bqx_macd_hist': {'first': 33, 'series': 'rn_b'},
    }) -%}
    {{- return(contract) -}}
{% endmacro %}
