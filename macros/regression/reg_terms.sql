{#-
    reg_terms: rolling quadratic-regression terms of one series (SPEC 2.3).

    For each window W and bar t, fit y ~ a2 x^2 + a1 x + a0 over the W bars ending
    at t (x = 0..W-1, measured from the window start) and return the seven
    wW_ columns. See macros/_macros.yml for the arguments and the two methods.
-#}
{% macro reg_terms(source, y_column, windows, pair=none, incremental=true, method=none) %}
    {%- set where = _check_series_args('reg_terms', source, 'y_column', y_column, windows, 3, 'a parabola needs 3 bars', pair) -%}
    {%- set method = var('reg_method', 'auto') if method is none else method -%}
    {%- if method not in ['auto', 'merge', 'chunk'] -%}
        {{ exceptions.raise_compiler_error("reg_terms: 'method' (var reg_method) must be one of auto, merge, chunk, got " ~ method) }}
    {%- endif -%}
    {{ return(adapter.dispatch('reg_terms', 'bqx_warehouse')(source, y_column, windows | map('int') | list, where, incremental, method)) }}
{% endmacro %}


{#- The method for a set of windows: 'merge' or 'chunk', the cheaper by a cost model
    measured on 11.4k-row series (docs/benchmarks.md): the merge tree costs a base
    block (~3 merges' worth) plus one unit per merge, the chunk method ~5 units per
    window. Ties go to the merge tree. -#}
{% macro _reg_method(windows, method, levels) %}
    {%- if method != 'auto' -%}
        {{- return(method) -}}
    {%- endif -%}
    {%- set merges = levels | map('length') | sum -%}
    {{- return('chunk' if 5 * (windows | length) < 3 + merges else 'merge') -}}
{% endmacro %}


{% macro default__reg_terms(source, y_column, windows, where, incremental, method) %}
{%- set base = _merge_base(windows) -%}
{#- the merge tree's plan: one window pass per level; a merge may take its newer block from the same pass -#}
{%- set levels = _merge_plan(base, windows, chained=true, max_chain=1) -%}
{%- set method = _reg_method(windows, method, levels) -%}
{%- set window_max = windows | max -%}
{%- set inc = _incremental_window(source, where, window_max - 1, y_column) if incremental else namespace(lower=none, after=none) -%}
with source_rows as (

    select
        ts_utc,
        {{ y_column }}::double precision as y
    from {{ source }}
    where {{ where }}
    {%- if inc.lower is not none %}
        and ts_utc >= {{ inc.lower }}
    {%- endif %}

)

{%- if method == 'merge' %}{{ _reg_merge_blocks(windows, base, levels) }}
{%- set stats = 'blocks_' ~ (levels | length) %}
{%- else %}{{ _reg_chunk_blocks(windows, _reg_rows_before(source, where, inc)) }}
{%- set stats = 'chunk_blocks' %}
{%- endif %},

coefficients as (

    -- on the orthogonal polynomials u and p2(u), the coefficients are c1 = S1 / K1 and
    -- c2 = S2 / K2; the fit at bar t is m + h c1 + k c2 (h = (W - 1) / 2, k = p2 at the
    -- newest bar) and ssr = c1 S1 + c2 S2 is the regression's sum of squares. The
    -- constant factors are folded at compile time: one multiplication per column.
    select
        ts_utc,
        y
        {%- for w in windows %}
        {%- set k1 = w * (w * w - 1) / 12 %}
        {%- set k2 = w * (w * w - 1) * (w * w - 4) / 180 %},
        m_{{ w }},
        c_{{ w }},
        s1_{{ w }} * {{ (w - 1) / 2 / k1 }} as hc1_{{ w }},
        s2_{{ w }} * {{ (w - 1) * (w - 2) / 6 / k2 }} as kc2_{{ w }},
        s1_{{ w }} * {{ (w - 1) / k1 }} as lin1_{{ w }},
        s2_{{ w }} * {{ (w - 1) ** 2 / k2 }} as quad_{{ w }},
        s1_{{ w }} * s1_{{ w }} * {{ 1 / k1 }} + s2_{{ w }} * s2_{{ w }} * {{ 1 / k2 }} as ssr_{{ w }}
        {%- endfor %}
    from {{ stats }}
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}
    {#- evaluated once: the outputs read these columns several times #}
    order by ts_utc
    offset 0

),

final as (

    select
        ts_utc,
        y as {{ y_column }}
        {%- for w in windows %},
        quad_{{ w }} as w{{ w }}_quadratic_term,
        lin1_{{ w }} - quad_{{ w }} as w{{ w }}_linear_term,
        m_{{ w }} - hc1_{{ w }} + kc2_{{ w }} as w{{ w }}_constant_term,
        m_{{ w }} + hc1_{{ w }} + kc2_{{ w }} as w{{ w }}_prediction,
        (y - m_{{ w }}) - hc1_{{ w }} - kc2_{{ w }} as w{{ w }}_residual,
        case
            when c_{{ w }} > 0 then least(ssr_{{ w }} / c_{{ w }}, 1.0)
            when c_{{ w }} = 0 then 0.0
        end as w{{ w }}_r2,
        case
            when c_{{ w }} is not null then sqrt(greatest(c_{{ w }} - ssr_{{ w }}, 0.0) * {{ 1 / w }})
        end as w{{ w }}_rmse
        {%- endfor %}
    from coefficients

)

select * from final
{% endmacro %}


{#- The merge of block m = [n, a, b] (the a bars ending b bars ago, then the last b):
    `old` holds SQL for the older block's m, s1, s2, c; the newer block's are columns. -#}
{% macro _reg_merge(m, old) %}
    {%- set n = m[0] %}{% set na = m[1] %}{% set nb = m[2] -%}
    {%- set d = '(m_' ~ nb ~ ' - ' ~ old.m ~ ')' -%}
    -- block of {{ n }} bars = the {{ na }} bars ending {{ nb }} bars ago, then the last {{ nb }}
        {{ old.m }} + {{ d }} * {{ nb / n }} as m_{{ n }},
        {{ old.s1 }} + s1_{{ nb }} + {{ d }} * {{ na * nb / 2 }} as s1_{{ n }},
        {{ old.s2 }} + s2_{{ nb }} - {{ nb }} * {{ old.s1 }} + {{ na }} * s1_{{ nb }}
        {%- if na != nb %} + {{ d }} * {{ na * nb * (na - nb) / 6 }}{% endif %} as s2_{{ n }},
        {{ old.c }} + c_{{ nb }} + {{ d }} * {{ d }} * {{ na * nb / n }} as c_{{ n }}
{%- endmacro %}


{#- The merge tree's CTEs (base_pairs, blocks_0, pass_1, blocks_1, ...) after source_rows;
    the last, blocks_<levels>, holds m_W, s1_W, s2_W, c_W of every window. -#}
{% macro _reg_merge_blocks(windows, base, levels) %}
{%- set half = (base - 1) / 2 -%}
{%- set mid = base // 2 -%}
{%- set pairs = range(0, base // 2) | list -%},

base_pairs as (

    -- the base block's bars y_j = y[t - j], paired around its middle bar y_mid:
    -- d_j = y_j - y_(n-1-j) and e_j = y_j + y_(n-1-j) - 2 y_mid, exact zeros on flat bars
    select
        ts_utc,
        y,
        lag(y, {{ mid }}) over bars as y_mid
        {%- for j in pairs %}
        {%- set yj = 'y' if j == 0 else 'lag(y, ' ~ j ~ ') over bars' %}
        {%- set yk = 'lag(y, ' ~ (base - 1 - j) ~ ') over bars' %},
        {{ yj }} - {{ yk }} as d_{{ j }},
        {{ yj }} + {{ yk }} - 2 * lag(y, {{ mid }}) over bars as e_{{ j }}
        {%- endfor %}
    from source_rows
    window bars as (order by ts_utc)

),

{#- base block stats: mean m, S1 = sum u (y - m), S2 = sum p2(u) (y - m), C = sum (y - m)^2,
    with u = x - (n - 1) / 2 and p2(u) = u^2 - (n^2 - 1) / 12 (u and p2 sum to zero; u is
    odd and p2 even around the middle, so S1 takes the d_j and S2 the e_j) #}
blocks_0 as (

    select
        ts_utc,
        y,
        {%- if pairs %}
        y_mid + ({% for j in pairs %}e_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}) / {{ base }}.0 as m_{{ base }},
        {% for j in pairs %}{{ half - j }} * d_{{ j }}{{ ' + ' if not loop.last }}{% endfor %} as s1_{{ base }},
        {% for j in pairs %}{{ (half - j) ** 2 - (base ** 2 - 1) / 12 }} * e_{{ j }}{{ ' + ' if not loop.last }}{% endfor %} as s2_{{ base }},
        ({% for j in pairs %}e_{{ j }} * e_{{ j }} + d_{{ j }} * d_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}) / 2
        - ({% for j in pairs %}e_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}) ^ 2 / {{ base }}.0 as c_{{ base }}
        {%- else %}
        y as m_1,
        0::double precision as s1_1,
        0::double precision as s2_1,
        0::double precision as c_1
        {%- endif %}
    from base_pairs
    {#- evaluated once: the lag()s of the next pass read these columns #}
    order by ts_utc
    offset 0

){{ _merge_passes(levels, windows, base, ['m', 's1', 's2', 'c'], _reg_merge, ['ts_utc', 'y']) }}
{%- endmacro %}


{#- SQL for the number of source rows before the first row read: 0 unless an
    incremental run reads from inc.lower. The chunk method aligns its chunks on the
    row number in the whole history, so an incremental run equals a full refresh. -#}
{% macro _reg_rows_before(source, where, inc) %}
    {%- if inc.lower is none -%}
        {{- return('0') -}}
    {%- endif -%}
    {{- return('(select count(*) from ' ~ source ~ ' where ' ~ where ~ ' and ts_utc < ' ~ inc.lower ~ ')') -}}
{% endmacro %}


{#- The chunk method's CTEs (chunk_rows, chunk_<W>_prefix, chunk_<W>_suffix, chunk_blocks)
    after source_rows; chunk_blocks holds m_W, s1_W, s2_W, c_W of every window.
    The bars are cut into chunks of W rows (row number rn // W). The W bars ending at
    t are the suffix of the previous chunk from t - W + 1 (a running aggregate in
    descending order, read back through one lag of W - 1 bars) and the prefix of t's
    chunk up to t (a running aggregate in ascending order), merged like two blocks of
    the merge tree. Each running aggregate only sees its own chunk's rows. -#}
{% macro _reg_chunk_blocks(windows, rows_before) %},

chunk_rows as (

    -- rn: the row number in the pair's whole history; chg: 1 where y differs from the
    -- bar before (a window is flat when no bar after its first has chg = 1)
    select
        ts_utc,
        y,
        {{ rows_before }} + row_number() over bars - 1 as rn,
        (y is distinct from lag(y) over bars)::int as chg
    from source_rows
    window bars as (order by ts_utc)

)
{%- set carried = ['ts_utc', 'y', 'rn', 'chg'] %}
{%- for w in windows %}
{%- set x = '(rn % ' ~ w ~ ')::double precision' %}
{%- set xr = '(' ~ (w - 1) ~ ' - rn % ' ~ w ~ ')::double precision' %},

chunk_{{ w }}_prefix as (

    -- the prefix of the chunk up to t, with x = 0, 1, ... from the chunk's first bar:
    -- count, changes, mean, C, sum (x - mean x) (y - m) and sum (x^2 - mean x^2) (y - m)
    select
        {{ carried | join(',\n        ') }},
        rn % {{ w }} as p_{{ w }},
        {{ _reg_chunk_aggregates('p', w, x) }}
    from {{ 'chunk_rows' if loop.first else 'chunk_' ~ loop.previtem ~ '_suffix' }}
    window chunk as (partition by rn / {{ w }} order by ts_utc rows unbounded preceding)

),

chunk_{{ w }}_suffix as (

    -- the suffix of the chunk from t, with x = 0, 1, ... from the chunk's last bar
    select
        {{ carried | join(',\n        ') }},
        p_{{ w }}, pn_{{ w }}, pchg_{{ w }}, pm_{{ w }}, pc_{{ w }}, ps1_{{ w }}, psq_{{ w }},
        {{ _reg_chunk_aggregates('s', w, xr) }}
    from chunk_{{ w }}_prefix
    window chunk as (partition by rn / {{ w }} order by ts_utc desc rows unbounded preceding)

)
{%- for col in ['p', 'pn', 'pchg', 'pm', 'pc', 'ps1', 'psq', 'sn', 'schg', 'sm', 'sc', 'ss1', 'ssq'] %}
{%- do carried.append(col ~ '_' ~ w) %}
{%- endfor %}
{%- endfor %},

chunk_blocks as (

    -- per window: the older block is the previous chunk's suffix of a = W - 1 - p bars
    -- (p = t's place in its chunk), read at t - W + 1; the newer one t's prefix of
    -- b = p + 1 bars. S1 is the aggregate's sum (x - mean x) (y - m) (negated for a
    -- suffix, whose x counts backwards); S2 = sum (x - mean x)^2 (y - m) follows from the
    -- cross-moments with x^2 and x: S2 = Sx2y - 2 mean(x) Sxy, with 2 mean(x) = n - 1.
    -- p = W - 1 is a whole chunk (no older block).
    select
        ts_utc,
        y
        {%- for w in windows %}
        {%- set p = 'p_' ~ w %}
        {%- set a = '(' ~ (w - 1) ~ ' - p_' ~ w ~ ')' %}
        {%- set b = '(p_' ~ w ~ ' + 1)' %}
        {%- set old = {} %}
        {%- for col in ['sn', 'schg', 'sm', 'sc', 'ss1', 'ssq'] %}
        {%- do old.update({col: 'lag(' ~ col ~ '_' ~ w ~ ', ' ~ (w - 1) ~ ') over bars'}) %}
        {%- endfor %}
        {%- set whole = p ~ ' = ' ~ (w - 1) %}
        {%- set n_y = 'pn_' ~ w ~ ' + case when ' ~ whole ~ ' then 0 else ' ~ old.sn ~ ' end' %}
        {%- set changes = 'pchg_' ~ w ~ ' + case when ' ~ whole ~ ' then 0 else ' ~ old.schg ~ ' end - lag(chg, ' ~ (w - 1) ~ ') over bars' %}
        {%- set d = '(pm_' ~ w ~ ' - ' ~ old.sm ~ ')' %}
        {%- set s1_new = 'ps1_' ~ w %}
        {%- set s2_new = '(psq_' ~ w ~ ' - ' ~ p ~ ' * ps1_' ~ w ~ ')' %}
        {%- set s1_old = '(-' ~ old.ss1 ~ ')' %}
        {%- set s2_old = '(' ~ old.ssq ~ ' - (' ~ a ~ ' - 1) * ' ~ old.ss1 ~ ')' %}
        {%- set valid = 'case when ' ~ n_y ~ ' = ' ~ w ~ ' then case when ' ~ changes ~ ' = 0 then ' %},
        -- window of {{ w }} bars: NULL unless all {{ w }} bars have a y; exact on flat windows
        {{ valid }}y when {{ whole }} then pm_{{ w }}
            else {{ old.sm }} + {{ d }} * {{ b }} / {{ w }}.0 end end as m_{{ w }},
        {{ valid }}0.0 when {{ whole }} then {{ s1_new }}
            else {{ s1_old }} + {{ s1_new }} + {{ d }} * ({{ a }} * {{ b }}) / 2.0 end end as s1_{{ w }},
        {{ valid }}0.0 when {{ whole }} then {{ s2_new }}
            else {{ s2_old }} + {{ s2_new }} - {{ b }} * {{ s1_old }} + {{ a }} * {{ s1_new }}
                + {{ d }} * ({{ a }} * {{ b }} * ({{ a }} - {{ b }})) / 6.0 end end as s2_{{ w }},
        {{ valid }}0.0 when {{ whole }} then pc_{{ w }}
            else {{ old.sc }} + pc_{{ w }} + {{ d }} * {{ d }} * ({{ a }} * {{ b }}) / {{ w }}.0 end end as c_{{ w }}
        {%- endfor %}
    from chunk_{{ windows | last }}_suffix
    window bars as (order by ts_utc)

)
{%- endmacro %}


{#- The running aggregates of one chunk side ('p' prefix, 's' suffix) over window `chunk`,
    with x the bar's place in the chunk counted from that side. -#}
{% macro _reg_chunk_aggregates(side, w, x) -%}
        count(y) over chunk as {{ side }}n_{{ w }},
        sum(chg) over chunk as {{ side }}chg_{{ w }},
        regr_avgy(y, {{ x }}) over chunk as {{ side }}m_{{ w }},
        regr_syy(y, {{ x }}) over chunk as {{ side }}c_{{ w }},
        regr_sxy(y, {{ x }}) over chunk as {{ side }}s1_{{ w }},
        regr_sxy(y, {{ x }} * {{ x }}) over chunk as {{ side }}sq_{{ w }}
{%- endmacro %}
