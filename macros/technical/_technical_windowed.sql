{#-
    _technical_windowed: the rolling-window and cumulative indicators of
    technical_{pair} (SMA, STOCH, CCI, WILLR, ROC, MOM, ULTOSC, AROON, TRANGE,
    Donchian, AO, vortex, ulcer, OBV, AD, MFI, CMF, VPT, NVI, EoM), set-based.

    Method. Four narrow passes over the pair's bars in ts_utc order, each one
    WindowAgg chain over the same sort: (1) lags (previous bar, close 10/12/20
    bars back, the 19 previous typical prices of CCI) and the frame max/min
    (highest high/lowest low of 14, 20 and 26 bars, the latter as [value, rn]
    arrays so the most recent extreme wins a tie, as in TA-Lib's AROON);
    (2) one-bar terms (true range, ULTOSC's buying pressure, MFI's signed money
    flow, the close-location value × volume of AD/CMF, vortex movements, EoM's
    box ratio, ulcer's drawdown, the OBV/AD/VPT/NVI increments); (3) frame sums
    (`rows between N-1 preceding and current row`, fixed small N, summed from
    scratch per row, so a window of zeros sums to exactly 0) and the outputs;
    (4) STOCH's slow %D. Everything is computed on differences, so a flat
    window gives exact zeros. The outputs are joined back to the input row.

    Exactness. The SMAs and the AO's averages are moving sums in `numeric` of
    the float inputs converted through their shortest round-trip text (exact
    decimal of every double, so flat windows give the close itself; numeric
    sums have an inverse transition, so a moving sum is O(1) per row whatever
    the window), divided and rounded to float8 once. The cumulative outputs
    are running sums in numeric of the float8 increments (OBV ±v, AD
    clv·v, VPT pct·v; NVI is 1000·exp(Σ ln f) with f = 1 + pct the float factor
    the reference multiplies by on a volume fall), rounded to float8 once per
    row: exact and independent of the summation order, so the precision does
    not drift with the row number. An incremental run reads only the rows from
    `inc.lower`; the increments of the rows before it are summed, exactly,
    from the source history (one aggregate over those rows, same term SQL),
    and the first row read takes its previous bar from the source, so every
    row equals a full refresh bit for bit.

    Lookback: the largest window minus one (SMA) or 35 bars (AO 33, ULTOSC 28,
    ulcer 26, AROON 25 and the others), whichever is larger.
-#}
{% macro _technical_windowed_lookback(ma_windows) %}
    {{- return([ma_windows | max, 35] | max) -}}
{% endmacro %}


{#- float8 -> numeric without loss: through the shortest round-trip text. -#}
{% macro _tw_num(expr) -%}
    ({{ expr }})::text::numeric
{%- endmacro %}


{#- The increments of the cumulative outputs, from c, h, l, v and the previous
    bar's cp, vp (NULL on the pair's first bar). -#}
{% macro _tw_cum_terms() -%}
    {{ _tw_num('case when cp is null then v when c > cp then v when c < cp then -v else 0 end') }} as n_obv,
        {{ _tw_num('case when h - l > 0 then (((c - l) - (h - c)) / (h - l)) * v else 0 end') }} as n_ad,
        {{ _tw_num('(c / cp - 1) * v') }} as n_vpt,
        {{ _tw_num('case when vp > v then ln(1 + (c / cp - 1)) else 0 end') }} as n_nvi
{%- endmacro %}


{#- TA-Lib's "is zero" of a difference of two prices a, b: |d| below 1e-14·(|a| + |b|)
    (measured on ta-lib 0.8.2: WILLR, STOCH, MFI). -#}
{% macro _tw_tiny(d, a, b) -%}
    abs({{ d }}) <= 1e-14 * (abs({{ a }}) + abs({{ b }}))
{%- endmacro %}


{% macro _technical_windowed(input, ma_windows, source, where, inc) %},

{%- set src_bar -%}
    select
        ts_utc,
        rate_index::double precision as c,
        high_index::double precision as h,
        low_index::double precision as l,
        coalesce(volume, 0)::double precision as v
    from {{ source }}
    where {{ where }}
{%- endset %}

tw_before as (

    -- the increments of the rows before the first row read (none in a full refresh),
    -- and the bar just before it
    {%- if inc.lower is none %}
    select
        0::numeric as n_obv,
        0::numeric as n_ad,
        0::numeric as n_vpt,
        0::numeric as n_nvi,
        null::double precision as c_last,
        null::double precision as v_last
    {%- else %}
    select
        coalesce(sum(n_obv), 0) as n_obv,
        coalesce(sum(n_ad), 0) as n_ad,
        coalesce(sum(n_vpt), 0) as n_vpt,
        coalesce(sum(n_nvi), 0) as n_nvi,
        (select c from ({{ src_bar }} and ts_utc < {{ inc.lower }}) as s order by ts_utc desc limit 1) as c_last,
        (select v from ({{ src_bar }} and ts_utc < {{ inc.lower }}) as s order by ts_utc desc limit 1) as v_last
    from (
        select
            {{ _tw_cum_terms() }}
        from (
            select
                *,
                lag(c) over (order by ts_utc) as cp,
                lag(v) over (order by ts_utc) as vp
            from ({{ src_bar }} and ts_utc < {{ inc.lower }}) as s
        ) as s
    ) as s
    {%- endif %}

),

tw_0 as (

    select
        i.ts_utc,
        i.rn,
        i.c,
        i.h,
        i.l,
        i.v,
        p.c_last,
        p.v_last,
        (i.h + i.l + i.c) / 3 as tp,
        -- [value, position]: the largest (smallest) wins, then the latest bar (TA-Lib's AROON ties)
        array[i.h, i.rn::double precision] as hr,
        array[i.l, -i.rn::double precision] as lr,
        {{ _tw_num('i.c') }} as cn,
        {{ _tw_num('0.5 * (i.h + i.l)') }} as mn
    from {{ input }} as i
    cross join tw_before as p

),

tw_a as (

    -- lags and the frame extremes
    select
        ts_utc,
        rn,
        c,
        h,
        l,
        v,
        tp,
        cn,
        mn,
        coalesce(lag(c) over w, c_last) as cp,
        coalesce(lag(v) over w, v_last) as vp,
        lag(h) over w as hp,
        lag(l) over w as lp,
        lag(c, 10) over w as c10,
        lag(c, 12) over w as c12,
        lag(c, 20) over w as c20,
        {%- for k in range(1, 20) %}
        lag(tp, {{ k }}) over w as tp{{ k }},
        {%- endfor %}
        max(h) over w14 as hh14,
        min(l) over w14 as ll14,
        max(c) over w14 as cmax14,
        max(h) over w20 as hh20,
        min(l) over w20 as ll20,
        max(hr) over w26 as hh26,
        min(lr) over w26 as ll26
    from tw_0
    window
        w as (order by ts_utc),
        w14 as (order by ts_utc rows between 13 preceding and current row),
        w20 as (order by ts_utc rows between 19 preceding and current row),
        w26 as (order by ts_utc rows between 25 preceding and current row)

),

tw_b as (

    -- one-bar terms, and the outputs that need no further window
    select
        ts_utc,
        rn,
        c,
        v,
        cn,
        mn,
        case when cp is not null then greatest(h - l, abs(h - cp), abs(l - cp)) end as tr,
        c - least(l, cp) as bp,
        -- STOCH's fast %K (0 on a flat window, as TA-Lib)
        case when {{ _tw_tiny('hh14 - ll14', 'hh14', 'll14') }} then 0
            else (c - ll14) / ((hh14 - ll14) / 100.0) end as fastk,
        case when rn >= 13 then
            case when {{ _tw_tiny('hh14 - ll14', 'hh14', 'll14') }} then 0
                else greatest(-100, least(0, (hh14 - c) / ((hh14 - ll14) / (0 - 100.0)))) end
        end as willr_14,
        -- CCI on the differences d_k = tp(t-k) - tp(t): tp - mean = -mean(d), mean deviation
        -- = mean |d_k - mean(d)|; 0 where TA-Lib's test finds either near zero
        case when rn >= 19 then
            case when abs(dm) <= 1e-14 * abs(tp) or md <= 1e-14 * abs(tp) then 0
                else (0 - dm) / (0.015 * md) end
        end as cci_20,
        case when rn >= 12 then case when c12 <> 0 then ((c / c12) - 1) * 100 else 0 end end as roc_12,
        c - c10 as mom_10,
        c - c20 as mom_20,
        case when rn >= 25 then 4.0 * (25 - (rn - hh26[2])) end as aroon_up_25,
        case when rn >= 25 then 4.0 * (25 - (rn + ll26[2])) end as aroon_down_25,
        case when rn >= 19 then hh20 end as donchian_high_20,
        case when rn >= 19 then ll20 end as donchian_low_20,
        -- MFI: the typical price's money flow, by the direction of the typical price
        case when tp - tp1 > 0 and not {{ _tw_tiny('tp - tp1', 'tp', 'tp1') }} then tp * v else 0 end as mf_pos,
        case when tp - tp1 < 0 and not {{ _tw_tiny('tp - tp1', 'tp', 'tp1') }} then tp * v else 0 end as mf_neg,
        -- the close location value times volume (TA-Lib's AD; ta's CMF fills 0/0 with 0)
        case when h - l > 0 then (((c - l) - (h - c)) / (h - l)) * v else 0 end as mfv,
        abs(h - lp) as vmp,
        abs(l - hp) as vmm,
        case when v <> 0 then (((h - hp) + (l - lp)) * (h - l)) / (2 * v) * 100000000 end as emv,
        (100 * (c - cmax14) / cmax14) * (100 * (c - cmax14) / cmax14) / 14 as ur2,
        {{ _tw_cum_terms() }}
    from tw_a
    cross join lateral (
        select
            (0 {%- for k in range(1, 20) %} + (tp{{ k }} - tp){% endfor %}) / 20 as dm
    ) as m
    cross join lateral (
        select
            (abs(m.dm) {%- for k in range(1, 20) %} + abs((tp{{ k }} - tp) - m.dm){% endfor %}) / 20 as md
    ) as q

),

tw_c as (

    -- frame sums (from scratch per row: a window of zeros sums to exactly 0) and running sums
    select
        ts_utc,
        rn,
        roc_12, mom_10, mom_20, willr_14, cci_20, aroon_up_25, aroon_down_25,
        donchian_high_20, donchian_low_20,
        tr as trange,
        sum(cn) over wcum as pc,
        sum(mn) over wcum as pm,
        avg(fastk) over w3 as slowk_raw,
        case when rn >= 28 then
            greatest(0, least(100, 100.0 * ((
                case when sum(tr) over w7 <> 0 then 4 * (sum(bp) over w7 / sum(tr) over w7) else 0 end
                + case when sum(tr) over w14 <> 0 then 2 * (sum(bp) over w14 / sum(tr) over w14) else 0 end
                + case when sum(tr) over w28 <> 0 then sum(bp) over w28 / sum(tr) over w28 else 0 end
            ) / 7)))
        end as ultosc,
        case when rn >= 14 and sum(tr) over w14 <> 0 then sum(vmp) over w14 / sum(tr) over w14 end as vortex_pos_14,
        case when rn >= 14 and sum(tr) over w14 <> 0 then sum(vmm) over w14 / sum(tr) over w14 end as vortex_neg_14,
        case when rn >= 13 then sqrt(sum(ur2) over w14) end as ulcer_14,
        (p.n_obv + sum(t.n_obv) over wcum)::double precision as obv,
        (p.n_ad + sum(t.n_ad) over wcum)::double precision as ad,
        (p.n_vpt + sum(t.n_vpt) over wcum)::double precision as vpt,
        1000 * exp((p.n_nvi + sum(t.n_nvi) over wcum)::double precision) as nvi,
        case when rn >= 14 then
            case when sum(mf_pos) over w14 + sum(mf_neg) over w14 <> 0
                then greatest(0, least(100, 100.0 * (sum(mf_pos) over w14 / (sum(mf_pos) over w14 + sum(mf_neg) over w14))))
                else 0 end
        end as mfi_14,
        case when rn >= 19 and sum(v) over w20 <> 0 then greatest(-1, least(1, sum(mfv) over w20 / sum(v) over w20)) end as cmf_20,
        case when rn >= 14 and count(emv) over w14 = 14 then sum(emv) over w14 / 14 end as eom_14
    from tw_b as t
    cross join tw_before as p
    window
        wcum as (order by ts_utc rows between unbounded preceding and current row),
        w3 as (order by ts_utc rows between 2 preceding and current row),
        w7 as (order by ts_utc rows between 6 preceding and current row),
        w14 as (order by ts_utc rows between 13 preceding and current row),
        w20 as (order by ts_utc rows between 19 preceding and current row),
        w28 as (order by ts_utc rows between 27 preceding and current row)

),

tw_res as (

    -- moving averages as differences of the exact running sums; STOCH: slow %K = SMA(3) of
    -- fast %K, slow %D = SMA(3) of slow %K
    select
        *,
        {%- for w in ma_windows %}
        case when rn >= {{ w - 1 }} then ((pc - coalesce(lag(pc, {{ w }}) over w, 0)) / {{ w }})::double precision end as sma_{{ w }},
        {%- endfor %}
        case when rn >= 33 then ((pm - coalesce(lag(pm, 5) over w, 0)) / 5 - (pm - coalesce(lag(pm, 34) over w, 0)) / 34)::double precision end as awesome_osc,
        case when rn >= 17 then greatest(0, least(100, slowk_raw)) end as stoch_k,
        case when rn >= 17 then greatest(0, least(100, avg(slowk_raw) over w3)) end as stoch_d
    from tw_c
    window
        w as (order by ts_utc),
        w3 as (order by ts_utc rows between 2 preceding and current row)

),

tw_out as (

    select
        i.*
        {%- for w in ma_windows %},
        r.sma_{{ w }}
        {%- endfor %}
        {%- for col in _technical_windowed_columns() %},
        r.{{ col }}
        {%- endfor %}
    from {{ input }} as i
    inner join tw_res as r on r.ts_utc = i.ts_utc

)
{%- endmacro %}


{#- The output columns besides the SMAs, in table order. -#}
{% macro _technical_windowed_columns() %}
    {{- return(['stoch_k', 'stoch_d', 'cci_20', 'willr_14', 'roc_12', 'mom_10', 'mom_20', 'ultosc',
        'aroon_up_25', 'aroon_down_25', 'trange', 'donchian_high_20', 'donchian_low_20', 'awesome_osc',
        'vortex_pos_14', 'vortex_neg_14', 'ulcer_14', 'obv', 'ad', 'mfi_14', 'cmf_20', 'vpt', 'nvi', 'eom_14']) -}}
{% endmacro %}


{#- Per output column: {'first': first bar index with a value, 'series': 'rn' (the
    pair's bars) or 'rn_b' (the BQX series), 'nullable': may be NULL after the
    warm-up (a division by zero), 'lo'/'hi': bounds}. Read by the technical_contract test. -#}
{% macro _technical_windowed_contract(ma_windows) %}
    {%- set contract = {} -%}
    {%- for w in ma_windows %}{% do contract.update({'sma_' ~ w: {'first': w - 1}}) %}{% endfor -%}
    {%- do contract.update({
        'stoch_k': {'first': 17, 'lo': 0, 'hi': 100},
        'stoch_d': {'first': 17, 'lo': 0, 'hi': 100},
        'cci_20': {'first': 19},
        'willr_14': {'first': 13, 'lo': -100, 'hi': 0},
        'roc_12': {'first': 12},
        'mom_10': {'first': 10},
        'mom_20': {'first': 20},
        'ultosc': {'first': 28, 'lo': 0, 'hi': 100},
        'aroon_up_25': {'first': 25, 'lo': 0, 'hi': 100},
        'aroon_down_25': {'first': 25, 'lo': 0, 'hi': 100},
        'trange': {'first': 1},
        'donchian_high_20': {'first': 19},
        'donchian_low_20': {'first': 19},
        'awesome_osc': {'first': 33},
        'vortex_pos_14': {'first': 14, 'nullable': true},
        'vortex_neg_14': {'first': 14, 'nullable': true},
        'ulcer_14': {'first': 13},
        'obv': {'first': 0},
        'ad': {'first': 0},
        'mfi_14': {'first': 14, 'lo': 0, 'hi': 100},
        'cmf_20': {'first': 19, 'nullable': true, 'lo': -1, 'hi': 1},
        'vpt': {'first': 1},
        'nvi': {'first': 0},
        'eom_14': {'first': 14, 'nullable': true},
    }) -%}
    {{- return(contract) -}}
{% endmacro %}
