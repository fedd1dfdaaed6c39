{#-
    reg_terms: rolling quadratic-regression terms of one series (SPEC 2.3).

    For each window W and bar t, fit y ~ a2 x^2 + a1 x + a0 over the W bars ending
    at t (x = 0..W-1, measured from the window start) and return the seven
    wW_ columns. See macros/_macros.yml for the arguments and the method.
-#}
{% macro reg_terms(source, y_column, windows, pair=none, incremental=true) %}
    {%- set where = _check_series_args('reg_terms', source, 'y_column', y_column, windows, 3, 'a parabola needs 3 bars', pair) -%}
    {{ return(adapter.dispatch('reg_terms', 'bqx_warehouse')(source, y_column, windows | map('int') | list, where, incremental)) }}
{% endmacro %}


{% macro default__reg_terms(source, y_column, windows, where, incremental) %}
{%- set base = _merge_base(windows) -%}
{#- one window pass per level; a merge may take its newer block from the same pass -#}
{%- set levels = _merge_plan(base, windows, chained=true, max_chain=1) -%}
{%- set window_max = windows | max -%}
{%- set inc = _incremental_window(source, where, window_max - 1, y_column) if incremental else namespace(lower=none, after=none) -%}
{%- set half = (base - 1) / 2 -%}
{%- set mid = base // 2 -%}
{%- set pairs = range(0, base // 2) | list -%}

with source_rows as (

    select
        ts_utc,
        {{ y_column }}::double precision as y
    from {{ source }}
    where {{ where }}
    {%- if inc.lower is not none %}
        and ts_utc >= {{ inc.lower }}
    {%- endif %}

),

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

){{ _merge_passes(levels, windows, base, ['m', 's1', 's2', 'c'], _reg_merge, ['ts_utc', 'y']) }},

coefficients as (

    -- c1 and c2: coefficients on the orthogonal polynomials u and p2(u); the fit at
    -- bar t is m + h c1 + k c2 (h = (W - 1) / 2, k = p2 at the newest bar), and
    -- ssr = c1 S1 + c2 S2 is the regression's sum of squares
    select
        ts_utc,
        y
        {%- for w in windows %}
        {%- set c1 = '(s1_' ~ w ~ ' / ' ~ (w * (w * w - 1) / 12) ~ ')' %}
        {%- set c2 = '(s2_' ~ w ~ ' / ' ~ (w * (w * w - 1) * (w * w - 4) / 180) ~ ')' %},
        m_{{ w }},
        c_{{ w }},
        {{ c1 }} as c1_{{ w }},
        {{ c2 }} as c2_{{ w }},
        {{ (w - 1) / 2 }} * {{ c1 }} as hc1_{{ w }},
        {{ (w - 1) * (w - 2) / 6 }} * {{ c2 }} as kc2_{{ w }},
        {{ c1 }} * s1_{{ w }} + {{ c2 }} * s2_{{ w }} as ssr_{{ w }}
        {%- endfor %}
    from blocks_{{ levels | length }}
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
        c2_{{ w }} * {{ (w - 1) ** 2 }} as w{{ w }}_quadratic_term,
        (c1_{{ w }} - {{ w - 1 }} * c2_{{ w }}) * {{ w - 1 }} as w{{ w }}_linear_term,
        m_{{ w }} - hc1_{{ w }} + kc2_{{ w }} as w{{ w }}_constant_term,
        m_{{ w }} + hc1_{{ w }} + kc2_{{ w }} as w{{ w }}_prediction,
        (y - m_{{ w }}) - hc1_{{ w }} - kc2_{{ w }} as w{{ w }}_residual,
        case
            when c_{{ w }} > 0 then least(ssr_{{ w }} / c_{{ w }}, 1.0)
            when c_{{ w }} = 0 then 0.0
        end as w{{ w }}_r2,
        case
            when c_{{ w }} is not null then sqrt(greatest(c_{{ w }} - ssr_{{ w }}, 0.0) / {{ w }})
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
