{#-
    _technical_windowed: the rolling-window and cumulative indicators of
    technical_{pair} (SMA, STOCH, CCI, WILLR, ROC, MOM, ULTOSC, AROON, TRANGE,
    Donchian, AO, VORTEX, ulcer, OBV, AD, MFI, CMF, PVT, NVI, EoM), set-based.

    Method. Four window nodes, each a single `window w as (order by ts_utc
    rows between unbounded preceding and current row)` over narrow rows in
    the same sort. PostgreSQL gives every distinct frame its own node and
    re-sums a float8 frame from scratch for every row, so no other frame is
    used: every frame is built from lags, and lag() ignores the frame, so the
    lags and the running sums of a pass share its node. An earlier bar is
    fetched whole, as one float8[] (one lag() call for all its values):
    (1) tw_lags: the previous bar, and the running sums of the closes and mid
    prices; (2) tw_run: the one-bar terms of the 3 previous bars (tw_terms.tt:
    true range, ULTOSC's buying pressure, vortex movements, MFI's signed money
    flow, close location value × volume, volume, EoM's box ratio and its
    count), the running sums of the cumulative outputs, the SMAs and the AO;
    tw_blocks then packs, per bar, the blocks of the 2, 3 and 4 bars ending at
    it (bk: the terms' sums, the highest high/lowest low/highest close and the
    position of its latest bar, the closes and typical prices); (3) tw_frames:
    the blocks 4, 8, ..., 24 bars back, so that a frame of N ≤ 28 bars is a
    few blocks (14 = 4 + 4 + 4 + 2, 7 = 4 + 3, 20 = 4 × 5, 28 = 4 × 7; AROON's
    26 = 4 × 6 + 2, its extreme in the latest block holding it, then at that
    block's latest bar, as TA-Lib on a tie) and CCI's 20 typical prices are
    the blocks' values; (4) tw_res: STOCH's smoothing (fast %K 1-4 bars back)
    and ulcer's 14 squared drawdowns (lags). `order by ts_utc offset 0`
    barriers keep the planner from inlining an expression into each of its
    uses (CCI's mean difference, the packed arrays). The outputs are joined
    back to the input row.

    Exactness. The frame sums are float8 sums of the window's terms, from
    scratch for every row (fixed association, oldest block first): a window
    of zeros sums to exactly 0, and nothing depends on the row number or on
    where a run started. The extremes are selections (greatest/least skip
    the missing bars of a partial frame, as max/min do). Everything is
    computed on differences, so a flat window gives exact zeros. The SMAs and
    the AO's averages are differences of running sums in `numeric` of the
    float inputs converted through their shortest round-trip text (exact
    decimal of every double, so flat windows give the close itself), divided
    and rounded to float8 once. The cumulative outputs are running sums in
    numeric of the float8 increments (OBV ±v, AD clv·v, PVT r·v with TA-Lib's
    r = (c − cp)/cp, 0 on the first bar; NVI is 1000·exp(Σ ln(1 + r)), 1 + r the
    factor TA-Lib's NVI applies on a volume fall), rounded to float8 once per row: exact and
    independent of the summation order, so the precision does not drift with
    the row number. An incremental run reads only the rows from `inc.lower`;
    the increments of the rows before it are summed, exactly, from the source
    history (one aggregate over those rows, same term SQL), and the first row
    read takes its previous bar from the source, so every row equals a full
    refresh bit for bit.

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
    bar's cp, vp (NULL on the pair's first bar, which adds nothing to PVT and NVI:
    TA-Lib's PVT is 0 and its NVI 1000 there). PVT and NVI use TA-Lib's relative
    change r = (c − cp)/cp, and skip a previous close of 0 as TA-Lib does. -#}
{% macro _tw_cum_terms() -%}
    {{ _tw_num('case when cp is null then v when c > cp then v when c < cp then -v else 0 end') }} as n_obv,
        {{ _tw_num('case when h - l > 0 then (((c - l) - (h - c)) / (h - l)) * v else 0 end') }} as n_ad,
        {{ _tw_num('case when cp <> 0 then ((c - cp) / cp) * v else 0 end') }} as n_vpt,
        {{ _tw_num('case when v < vp and cp <> 0 then ln(1 + (c - cp) / cp) else 0 end') }} as n_nvi
{%- endmacro %}


{#- TA-Lib's "is zero" of a difference of two prices a, b: |d| below 1e-14·(|a| + |b|)
    (measured on ta-lib 0.8.2: WILLR, STOCH, MFI). -#}
{% macro _tw_tiny(d, a, b) -%}
    abs({{ d }}) <= 1e-14 * (abs({{ a }}) + abs({{ b }}))
{%- endmacro %}


{% macro _technical_windowed(input, ma_windows, source, where, inc) %},
{#- the outputs finished in the first passes, carried through the later ones -#}
{%- set done = [] -%}
{%- for w in ma_windows %}{% do done.append('sma_' ~ w) %}{% endfor -%}
{%- do done.extend(['awesome_osc', 'obv', 'ad', 'vpt', 'nvi']) -%}

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

tw_bar as (

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
        {{ _tw_num('i.c') }} as cn,
        {{ _tw_num('0.5 * (i.h + i.l)') }} as mn
    from {{ input }} as i
    cross join tw_before as p

),

tw_lags as (

    -- window node 1: the previous bar, and the running sums of the SMAs and the AO
    select
        ts_utc,
        rn,
        c,
        h,
        l,
        v,
        tp,
        coalesce(lag(c) over w, c_last) as cp,
        coalesce(lag(v) over w, v_last) as vp,
        lag(h) over w as hp,
        lag(l) over w as lp,
        lag(tp) over w as tp1,
        sum(cn) over w as pc,
        sum(mn) over w as pm
    from tw_bar
    window w as (order by ts_utc rows between unbounded preceding and current row)

),

tw_terms as (

    -- the one-bar terms, packed in one float8[] (tt) so that the next pass fetches an
    -- earlier bar's terms with one lag() call
    select
        ts_utc,
        rn,
        c,
        h,
        l,
        tp,
        pc,
        pm,
        case when cp is not null then greatest(h - l, abs(h - cp), abs(l - cp)) end as trange,
        array[
            c,
            h,
            l,
            tp,
            -- true range (none on the pair's first bar: adds 0) and ULTOSC's buying pressure
            coalesce(greatest(h - l, abs(h - cp), abs(l - cp)), 0),
            c - least(l, cp),
            -- vortex movements
            abs(h - lp),
            abs(l - hp),
            -- MFI: the typical price's money flow, by the direction of the typical price
            case when tp - tp1 > 0 and not {{ _tw_tiny('tp - tp1', 'tp', 'tp1') }} then tp * v else 0 end,
            case when tp - tp1 < 0 and not {{ _tw_tiny('tp - tp1', 'tp', 'tp1') }} then tp * v else 0 end,
            -- the close location value times volume (TA-Lib's AD and CMF: 0 where high = low)
            case when h - l > 0 then (((c - l) - (h - c)) / (h - l)) * v else 0 end,
            v,
            -- EoM's box ratio (none without volume: adds 0, and is not counted)
            coalesce(case when v <> 0 then (((h - hp) + (l - lp)) * (h - l)) / (2 * v) * 100000000 end, 0),
            case when v <> 0 and hp is not null then 1 else 0 end
        ] as tt,
        {{ _tw_cum_terms() }}
    from tw_lags
    order by ts_utc
    offset 0

),

tw_run as (

    -- window node 2: the terms of the 3 previous bars; the exact running sums of the
    -- cumulative outputs; the SMAs and the AO as differences of exact running sums
    select
        ts_utc,
        rn,
        trange,
        tt,
        lag(tt) over w as tt1,
        lag(tt, 2) over w as tt2,
        lag(tt, 3) over w as tt3,
        {%- for w in ma_windows %}
        case when rn >= {{ w - 1 }} then ((pc - coalesce(lag(pc, {{ w }}) over w, 0)) / {{ w }})::double precision end as sma_{{ w }},
        {%- endfor %}
        case when rn >= 33 then ((pm - coalesce(lag(pm, 5) over w, 0)) / 5 - (pm - coalesce(lag(pm, 34) over w, 0)) / 34)::double precision end as awesome_osc,
        (p.n_obv + sum(t.n_obv) over w)::double precision as obv,
        (p.n_ad + sum(t.n_ad) over w)::double precision as ad,
        (p.n_vpt + sum(t.n_vpt) over w)::double precision as vpt,
        1000 * exp((p.n_nvi + sum(t.n_nvi) over w)::double precision) as nvi
    from tw_terms as t
    cross join tw_before as p
    window w as (order by ts_utc rows between unbounded preceding and current row)

),

tw_bars4 as (

    -- the 4 bars ending at this one, by name (x, x1, x2, x3: this bar, 1, 2, 3 bars back)
    select
        ts_utc,
        rn,
        trange,
        {{ done | join(', ') }}
        {%- for name in _tw_term_names() %}
        {%- set k = loop.index %},
        tt[{{ k }}] as {{ name }}, tt1[{{ k }}] as {{ name }}1, tt2[{{ k }}] as {{ name }}2, tt3[{{ k }}] as {{ name }}3
        {%- endfor %}
    from tw_run
    order by ts_utc
    offset 0

),

tw_blocks as (

    -- blocks of 2, 3 and 4 bars ending at this one, packed in one float8[] (bk): the sums
    -- of the terms (oldest first), the extremes and the position of their latest bar, the
    -- closes and typical prices; a frame of N bars is then a few blocks N - 1 bars apart
    select
        ts_utc,
        rn,
        c,
        tp,
        trange,
        {{ done | join(', ') }},
        array[
            c, c1, c2, c3,
            tp, tp1, tp2, tp3,
            greatest(h, h1, h2, h3),
            case when h >= greatest(h1, h2, h3) or h1 is null then 0
                when h1 >= greatest(h2, h3) or h2 is null then 1
                when h2 >= h3 or h3 is null then 2 else 3 end,
            greatest(h, h1),
            case when h >= h1 or h1 is null then 0 else 1 end,
            least(l, l1, l2, l3),
            case when l <= least(l1, l2, l3) or l1 is null then 0
                when l1 <= least(l2, l3) or l2 is null then 1
                when l2 <= l3 or l3 is null then 2 else 3 end,
            least(l, l1),
            case when l <= l1 or l1 is null then 0 else 1 end,
            greatest(c, c1, c2, c3),
            greatest(c, c1),
            {%- for name in _tw_term_names()[4:] %}
            (({{ name }}3 + {{ name }}2) + {{ name }}1) + {{ name }},
            ({{ name }}2 + {{ name }}1) + {{ name }},
            {{ name }}1 + {{ name }}{{ ',' if not loop.last }}
            {%- endfor %}
        ] as bk
    from tw_bars4
    order by ts_utc
    offset 0

),

tw_frames as (

    -- window node 3: the blocks 4, 8, ..., 24 bars back
    select
        *
        {%- for k in range(4, 25, 4) %},
        lag(bk, {{ k }}) over w as bk{{ k }}
        {%- endfor %}
    from tw_blocks
    window w as (order by ts_utc rows between unbounded preceding and current row)

),

tw_frame_vals as (

    -- the frame sums and extremes (every frame sum from scratch: a window of zeros sums
    -- to exactly 0), the lagged closes and typical prices
    {%- set bi = _tw_block_index() %}
    select
        ts_utc,
        rn,
        c,
        tp,
        trange,
        {{ done | join(', ') }},
        bk8[{{ bi.c2 }}] as c10,
        bk12[{{ bi.c0 }}] as c12,
        bk20[{{ bi.c0 }}] as c20,
        {%- for k in range(1, 20) %}
        bk{{ (k // 4) * 4 if k >= 4 else '' }}[{{ bi['tp' ~ (k % 4)] }}] as tp{{ k }},
        {%- endfor %}
        greatest(bk[{{ bi.h4 }}], bk4[{{ bi.h4 }}], bk8[{{ bi.h4 }}], bk12[{{ bi.h2 }}]) as hh14,
        least(bk[{{ bi.l4 }}], bk4[{{ bi.l4 }}], bk8[{{ bi.l4 }}], bk12[{{ bi.l2 }}]) as ll14,
        greatest(bk[{{ bi.c4 }}], bk4[{{ bi.c4 }}], bk8[{{ bi.c4 }}], bk12[{{ bi.c2m }}]) as cmax14,
        greatest(bk[{{ bi.h4 }}], bk4[{{ bi.h4 }}], bk8[{{ bi.h4 }}], bk12[{{ bi.h4 }}], bk16[{{ bi.h4 }}]) as hh20,
        least(bk[{{ bi.l4 }}], bk4[{{ bi.l4 }}], bk8[{{ bi.l4 }}], bk12[{{ bi.l4 }}], bk16[{{ bi.l4 }}]) as ll20,
        -- AROON: the position of the latest extreme of the 26 bars, block by block, latest first
        case greatest(bk[{{ bi.h4 }}] {%- for k in range(4, 21, 4) %}, bk{{ k }}[{{ bi.h4 }}]{% endfor %}, bk24[{{ bi.h2 }}])
            when bk[{{ bi.h4 }}] then bk[{{ bi.h4_at }}]
            {%- for k in range(4, 21, 4) %}
            when bk{{ k }}[{{ bi.h4 }}] then {{ k }} + bk{{ k }}[{{ bi.h4_at }}]
            {%- endfor %}
            else 24 + bk24[{{ bi.h2_at }}] end as hh26_ago,
        case least(bk[{{ bi.l4 }}] {%- for k in range(4, 21, 4) %}, bk{{ k }}[{{ bi.l4 }}]{% endfor %}, bk24[{{ bi.l2 }}])
            when bk[{{ bi.l4 }}] then bk[{{ bi.l4_at }}]
            {%- for k in range(4, 21, 4) %}
            when bk{{ k }}[{{ bi.l4 }}] then {{ k }} + bk{{ k }}[{{ bi.l4_at }}]
            {%- endfor %}
            else 24 + bk24[{{ bi.l2_at }}] end as ll26_ago,
        bk4[{{ bi.tr3 }}] + bk[{{ bi.tr4 }}] as tr7,
        bk4[{{ bi.bp3 }}] + bk[{{ bi.bp4 }}] as bp7,
        {%- for name in ['tr', 'bp', 'vmp', 'vmm', 'mf_pos', 'mf_neg', 'emv', 'emv_n'] %}
        ((bk12[{{ bi[name ~ '2'] }}] + bk8[{{ bi[name ~ '4'] }}]) + bk4[{{ bi[name ~ '4'] }}]) + bk[{{ bi[name ~ '4'] }}] as {{ name }}14,
        {%- endfor %}
        {%- for name in ['mfv', 'v'] %}
        (((bk16[{{ bi[name ~ '4'] }}] + bk12[{{ bi[name ~ '4'] }}]) + bk8[{{ bi[name ~ '4'] }}]) + bk4[{{ bi[name ~ '4'] }}]) + bk[{{ bi[name ~ '4'] }}] as {{ name }}20,
        {%- endfor %}
        {%- for name in ['tr', 'bp'] %}
        (((((bk24[{{ bi[name ~ '4'] }}] + bk20[{{ bi[name ~ '4'] }}]) + bk16[{{ bi[name ~ '4'] }}]) + bk12[{{ bi[name ~ '4'] }}]) + bk8[{{ bi[name ~ '4'] }}]) + bk4[{{ bi[name ~ '4'] }}]) + bk[{{ bi[name ~ '4'] }}] as {{ name }}28{{ ',' if not loop.last }}
        {%- endfor %}
    from tw_frames
    order by ts_utc
    offset 0

),

tw_dev as (

    -- CCI's mean difference d_k = tp(t-k) - tp(t) (its own pass: the planner would inline it
    -- in each of its uses)
    select
        *,
        (0 {%- for k in range(1, 20) %} + (tp{{ k }} - tp){% endfor %}) / 20 as dm
    from tw_frame_vals
    order by ts_utc
    offset 0

),

tw_ext as (

    -- the outputs of one bar
    select
        ts_utc,
        rn,
        {{ done | join(', ') }},
        trange,
        -- CCI on the differences: tp - mean = -mean(d), mean deviation = mean |d_k - mean(d)|;
        -- 0 where TA-Lib's test finds either near zero
        case when rn >= 19 then
            case when abs(dm) <= 1e-14 * abs(tp) or md <= 1e-14 * abs(tp) then 0
                else (0 - dm) / (0.015 * md) end
        end as cci_20,
        -- STOCH's fast %K (0 on a flat window, as TA-Lib)
        case when {{ _tw_tiny('hh14 - ll14', 'hh14', 'll14') }} then 0
            else (c - ll14) / ((hh14 - ll14) / 100.0) end as fastk,
        case when rn >= 13 then
            case when {{ _tw_tiny('hh14 - ll14', 'hh14', 'll14') }} then 0
                else greatest(-100, least(0, (hh14 - c) / ((hh14 - ll14) / (0 - 100.0)))) end
        end as willr_14,
        case when rn >= 12 then case when c12 <> 0 then ((c / c12) - 1) * 100 else 0 end end as roc_12,
        c - c10 as mom_10,
        c - c20 as mom_20,
        case when rn >= 25 then 4.0 * (25 - hh26_ago) end as aroon_up_25,
        case when rn >= 25 then 4.0 * (25 - ll26_ago) end as aroon_down_25,
        case when rn >= 19 then hh20 end as donchian_high_20,
        case when rn >= 19 then ll20 end as donchian_low_20,
        case when rn >= 28 then
            greatest(0, least(100, 100.0 * ((
                case when tr7 <> 0 then 4 * (bp7 / tr7) else 0 end
                + case when tr14 <> 0 then 2 * (bp14 / tr14) else 0 end
                + case when tr28 <> 0 then bp28 / tr28 else 0 end
            ) / 7)))
        end as ultosc,
        -- VORTEX: 0 where the 14 true ranges sum to 0 (TA-Lib's exact test on the sum)
        case when rn >= 14 then case when tr14 > 0 then vmp14 / tr14 else 0 end end as vortex_pos_14,
        case when rn >= 14 then case when tr14 > 0 then vmm14 / tr14 else 0 end end as vortex_neg_14,
        case when rn >= 14 then
            case when mf_pos14 + mf_neg14 <> 0
                then greatest(0, least(100, 100.0 * (mf_pos14 / (mf_pos14 + mf_neg14))))
                else 0 end
        end as mfi_14,
        -- CMF: 0 where the 20 volumes sum to 0 (TA-Lib's test: the sum > 0)
        case when rn >= 19 then case when v20 > 0 then greatest(-1, least(1, mfv20 / v20)) else 0 end end as cmf_20,
        case when rn >= 14 and emv_n14 = 14 then emv14 / 14 end as eom_14,
        -- ulcer's squared drawdown from the highest close of 14 bars
        (100 * (c - cmax14) / cmax14) * (100 * (c - cmax14) / cmax14) / 14 as ur2
    from tw_dev
    cross join lateral (
        select
            (abs(dm) {%- for k in range(1, 20) %} + abs((tp{{ k }} - tp) - dm){% endfor %}) / 20 as md
    ) as q
    order by ts_utc
    offset 0

),

tw_res as (

    -- window node 4: STOCH (slow %K = SMA(3) of fast %K, slow %D = SMA(3) of slow %K) and
    -- ulcer (the 14 squared drawdowns, summed from scratch)
    select
        *,
        case when rn >= 17 then greatest(0, least(100, ((lag(fastk, 2) over w + lag(fastk) over w) + fastk) / 3)) end as stoch_k,
        case when rn >= 17 then greatest(0, least(100, ((
            ((lag(fastk, 4) over w + lag(fastk, 3) over w) + lag(fastk, 2) over w) / 3
            + ((lag(fastk, 3) over w + lag(fastk, 2) over w) + lag(fastk) over w) / 3)
            + ((lag(fastk, 2) over w + lag(fastk) over w) + fastk) / 3) / 3)) end as stoch_d,
        case when rn >= 13 then sqrt(
            {%- for k in range(13, 0, -1) %}lag(ur2, {{ k }}) over w + {% endfor %}ur2) end as ulcer_14
    from tw_ext
    window w as (order by ts_utc rows between unbounded preceding and current row)

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


{#- The one-bar terms packed in tw_terms.tt, in order (the first four: the bar). -#}
{% macro _tw_term_names() %}
    {{- return(['c', 'h', 'l', 'tp', 'tr', 'bp', 'vmp', 'vmm', 'mf_pos', 'mf_neg', 'mfv', 'v', 'emv', 'emv_n']) -}}
{% endmacro %}


{#- The 1-based positions of the blocks packed in tw_blocks.bk. -#}
{% macro _tw_block_index() %}
    {%- set names = ['c0', 'c1', 'c2', 'c3', 'tp0', 'tp1', 'tp2', 'tp3',
        'h4', 'h4_at', 'h2', 'h2_at', 'l4', 'l4_at', 'l2', 'l2_at', 'c4', 'c2m'] -%}
    {%- for name in _tw_term_names()[4:] %}{% do names.extend([name ~ '4', name ~ '3', name ~ '2']) %}{% endfor -%}
    {%- set index = {} -%}
    {%- for name in names %}{% do index.update({name: loop.index}) %}{% endfor -%}
    {{- return(index) -}}
{% endmacro %}


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
        'vortex_pos_14': {'first': 14},
        'vortex_neg_14': {'first': 14},
        'ulcer_14': {'first': 13},
        'obv': {'first': 0},
        'ad': {'first': 0},
        'mfi_14': {'first': 14, 'lo': 0, 'hi': 100},
        'cmf_20': {'first': 19, 'lo': -1, 'hi': 1},
        'vpt': {'first': 0},
        'nvi': {'first': 0},
        'eom_14': {'first': 14, 'nullable': true},
    }) -%}
    {{- return(contract) -}}
{% endmacro %}
