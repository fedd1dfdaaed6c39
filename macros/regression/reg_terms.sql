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
{%- set levels = _merge_plan(base, windows, chained=true) -%}
{%- set window_max = windows | max -%}
{%- set inc = _incremental_window(source, where, window_max - 1, y_column) if incremental else namespace(lower=none, after=none) -%}
{%- set half = (base - 1) / 2 -%}

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

base_lags as (

    select
        ts_utc,
        y,
        y as y_0
        {%- for j in range(1, base) %},
        lag(y, {{ j }}) over bars as y_{{ j }}
        {%- endfor %}
    from source_rows
    window bars as (order by ts_utc)

),

base_deviations as (

    -- deviations from the oldest bar of the base block: exact zeros on flat bars
    select
        ts_utc,
        y,
        y_{{ base - 1 }} as y_ref
        {%- for j in range(0, base - 1) %},
        y_{{ j }} - y_{{ base - 1 }} as dy_{{ j }}
        {%- endfor %}
    from base_lags
    offset 0

),

{#- base block stats: mean m, S1 = sum u (y - m), S2 = sum p2(u) (y - m), C = sum (y - m)^2,
    with u = x - (n - 1) / 2 and p2(u) = u^2 - (n^2 - 1) / 12 (u and p2 sum to zero) #}
blocks_0 as (

    select
        ts_utc,
        y,
        {%- if base == 1 %}
        y as m_{{ base }},
        0::double precision as s1_{{ base }},
        0::double precision as s2_{{ base }},
        0::double precision as c_{{ base }}
        {%- else %}
        y_ref + ({% for j in range(0, base - 1) %}dy_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}) / {{ base }}.0 as m_{{ base }},
        {% for j in range(0, base - 1) %}{{ half - j }} * dy_{{ j }}{{ ' + ' if not loop.last }}{% endfor %} as s1_{{ base }},
        {% for j in range(0, base - 1) %}{{ (half - j) ** 2 - (base ** 2 - 1) / 12 }} * dy_{{ j }}{{ ' + ' if not loop.last }}{% endfor %} as s2_{{ base }},
        ({% for j in range(0, base - 1) %}dy_{{ j }} * dy_{{ j }}{{ ' + ' if not loop.last }}{% endfor %})
        - ({% for j in range(0, base - 1) %}dy_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}) ^ 2 / {{ base }}.0 as c_{{ base }}
        {%- endif %}
    from base_deviations

){%- for level in levels %},
{%- set lvl = loop.index %}
{%- set made = [] %}
{%- for m in level %}{% do made.append(m[0]) %}{% endfor %}
{%- set carried = _merge_carried(levels, lvl, windows, base) %}

lags_{{ lvl }} as (

    select
        *
        {%- for m in level %}
        {%- for stat in ['m', 's1', 's2', 'c'] %},
        lag({{ stat }}_{{ m[1] }}, {{ m[2] }}) over bars as old_{{ m[0] }}_{{ stat }}
        {%- endfor %}
        {%- endfor %}
    from blocks_{{ lvl - 1 }}
    window bars as (order by ts_utc)

),

{%- for m in level %}
{%- set na = m[1] %}{% set nb = m[2] %}{% set n = m[0] %}
{%- set d = '(m_' ~ nb ~ ' - old_' ~ n ~ '_m)' %}

merged_{{ n }} as (

    -- block of {{ n }} bars = the {{ na }} bars ending {{ nb }} bars ago, then the last {{ nb }}
    select
        *,
        old_{{ n }}_m + {{ d }} * {{ nb / n }} as m_{{ n }},
        old_{{ n }}_s1 + s1_{{ nb }} + {{ d }} * {{ na * nb / 2 }} as s1_{{ n }},
        old_{{ n }}_s2 + s2_{{ nb }} - {{ nb }} * old_{{ n }}_s1 + {{ na }} * s1_{{ nb }}
            + {{ d }} * {{ na * nb * (na - nb) / 6 }} as s2_{{ n }},
        old_{{ n }}_c + c_{{ nb }} + {{ d }} * {{ d }} * {{ na * nb / n }} as c_{{ n }}
    from {{ 'lags_' ~ lvl if loop.first else 'merged_' ~ loop.previtem[0] }}
    {#- evaluated once: a later merge of this level reads these columns several times #}
    offset 0

),
{%- endfor %}

blocks_{{ lvl }} as (

    select
        ts_utc,
        y
        {%- for length in carried %},
        m_{{ length }}, s1_{{ length }}, s2_{{ length }}, c_{{ length }}
        {%- endfor %}
        {%- for m in level %},
        m_{{ m[0] }}, s1_{{ m[0] }}, s2_{{ m[0] }}, c_{{ m[0] }}
        {%- endfor %}
    from merged_{{ level[-1][0] }}

)
{%- endfor %},

coefficients as (

    -- c1 and c2: coefficients on the orthogonal polynomials u and p2(u)
    select
        ts_utc,
        y
        {%- for w in windows %},
        m_{{ w }},
        s1_{{ w }},
        s2_{{ w }},
        c_{{ w }},
        s1_{{ w }} / {{ w * (w * w - 1) / 12 }} as c1_{{ w }},
        s2_{{ w }} / {{ w * (w * w - 1) * (w * w - 4) / 180 }} as c2_{{ w }}
        {%- endfor %}
    from blocks_{{ levels | length }}
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}
    offset 0

),

final as (

    select
        ts_utc,
        y as {{ y_column }}
        {%- for w in windows %}
        {%- set h = (w - 1) / 2 %}{% set k = (w - 1) * (w - 2) / 6 %},
        c2_{{ w }} * {{ (w - 1) ** 2 }} as w{{ w }}_quadratic_term,
        (c1_{{ w }} - {{ w - 1 }} * c2_{{ w }}) * {{ w - 1 }} as w{{ w }}_linear_term,
        m_{{ w }} - {{ h }} * c1_{{ w }} + {{ k }} * c2_{{ w }} as w{{ w }}_constant_term,
        m_{{ w }} + {{ h }} * c1_{{ w }} + {{ k }} * c2_{{ w }} as w{{ w }}_prediction,
        (y - m_{{ w }}) - {{ h }} * c1_{{ w }} - {{ k }} * c2_{{ w }} as w{{ w }}_residual,
        case
            when c_{{ w }} > 0 then least((c1_{{ w }} * s1_{{ w }} + c2_{{ w }} * s2_{{ w }}) / c_{{ w }}, 1.0)
            when c_{{ w }} = 0 then 0.0
        end as w{{ w }}_r2,
        case
            when c_{{ w }} is not null
                then sqrt(greatest(c_{{ w }} - c1_{{ w }} * s1_{{ w }} - c2_{{ w }} * s2_{{ w }}, 0.0) / {{ w }})
        end as w{{ w }}_rmse
        {%- endfor %}
    from coefficients

)

select * from final
{% endmacro %}
