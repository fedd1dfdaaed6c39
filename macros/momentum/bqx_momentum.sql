{#-
    bqx_momentum: backward momentum of a price series (SPEC 2.2).

    For each window W and bar t, over the W bars strictly before t, with
    r_i = (p[t-i] - p[t]) / p[t]: the sum, max, min, mean and sample stdev of the
    r_i, and the endpoint r_W. See macros/_macros.yml for arguments and method.
-#}
{% macro bqx_momentum(source, price_column, windows, pair=none, incremental=true) %}
    {%- set where = _check_series_args('bqx_momentum', source, 'price_column', price_column, windows, 2, 'a sample stdev needs 2 bars', pair) -%}
    {{ return(adapter.dispatch('bqx_momentum', 'bqx_warehouse')(source, price_column, windows | map('int') | list, where, incremental)) }}
{% endmacro %}


{% macro default__bqx_momentum(source, price_column, windows, where, incremental) %}
{%- set base = _merge_base(windows) -%}
{#- one window pass per level; a merge may take its newer block from the same pass -#}
{%- set levels = _merge_plan(base, windows, chained=true, max_chain=1) -%}
{%- set window_max = windows | max -%}
{#- carried unchanged through every pass -#}
{%- set keep = ['ts_utc', 'p'] -%}
{%- for w in windows %}{% do keep.append('p_back_' ~ w) %}{% endfor -%}
{%- set inc = _incremental_window(source, where, window_max, price_column) if incremental else namespace(lower=none, after=none) -%}

with source_rows as (

    select
        ts_utc,
        {{ price_column }}::double precision as p
    from {{ source }}
    where {{ where }}
    {%- if inc.lower is not none %}
        and ts_utc >= {{ inc.lower }}
    {%- endif %}

),

base_lags as (

    -- q_j = p[t - 1 - j]: the base block covers the bars strictly before t
    select
        ts_utc,
        p
        {%- for j in range(0, base) %},
        lag(p, {{ j + 1 }}) over bars as q_{{ j }}
        {%- endfor %}
        {%- for w in windows %},
        lag(p, {{ w }}) over bars as p_back_{{ w }}
        {%- endfor %}
    from source_rows
    window bars as (order by ts_utc)

),

blocks_0 as (

    -- base block of the bars strictly before t, kept as its newest bar r (= q_0),
    -- the offset dm of its mean from r, C = sum (q - mean)^2, max and min. Means are
    -- never formed in absolute terms: r - p[t] is then an exact difference and the
    -- return keeps its own relative precision, however small it is.
    select
        ts_utc,
        p
        {%- for w in windows %},
        p_back_{{ w }}
        {%- endfor %},
        q_0 as r_{{ base }},
        ({% for j in range(1, base) %}(q_{{ j }} - q_0){{ ' + ' if not loop.last }}{% endfor %}{% if base == 1 %}0{% endif %}) / {{ base }}.0 as dm_{{ base }},
        ({% for j in range(1, base) %}(q_{{ j }} - q_0) ^ 2{{ ' + ' if not loop.last }}{% endfor %}{% if base == 1 %}0{% endif %})
        - ({% for j in range(1, base) %}(q_{{ j }} - q_0){{ ' + ' if not loop.last }}{% endfor %}{% if base == 1 %}0{% endif %}) ^ 2 / {{ base }}.0 as c_{{ base }},
        greatest({% for j in range(0, base) %}q_{{ j }}{{ ', ' if not loop.last }}{% endfor %}) as mx_{{ base }},
        least({% for j in range(0, base) %}q_{{ j }}{{ ', ' if not loop.last }}{% endfor %}) as mn_{{ base }},
        {#- greatest/least ignore NULLs: keep the block NULL until all its bars exist #}
        q_{{ base - 1 }} is not null as full_{{ base }}
    from base_lags
    {#- evaluated once: the lag()s of the next pass read these columns #}
    order by ts_utc
    offset 0

){{ _merge_passes(levels, windows, base, ['r', 'dm', 'c', 'mx', 'mn', 'full'], _bqx_merge, keep) }},

final as (

    select
        ts_utc,
        p as {{ price_column }}
        {%- for w in windows %},
        case when full_{{ w }} then {{ w }} * (((r_{{ w }} - p) + dm_{{ w }}) / p) end as w{{ w }}_bqx_return,
        case when full_{{ w }} then (mx_{{ w }} - p) / p end as w{{ w }}_bqx_max,
        case when full_{{ w }} then (mn_{{ w }} - p) / p end as w{{ w }}_bqx_min,
        case when full_{{ w }} then ((r_{{ w }} - p) + dm_{{ w }}) / p end as w{{ w }}_bqx_avg,
        case when full_{{ w }} then sqrt(greatest(c_{{ w }}, 0.0) / {{ w - 1 }}) / p end as w{{ w }}_bqx_stdev,
        (p_back_{{ w }} - p) / p as w{{ w }}_bqx_endpoint
        {%- endfor %}
    from blocks_{{ levels | length }}
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}

)

select * from final
{% endmacro %}


{#- The merge of block m = [n, a, b] (the a bars ending b bars ago, then the last b):
    `old` holds SQL for the older block's statistics; the newer block's are columns.
    delta = mean(newer) - mean(older), from exact differences of nearby bars. -#}
{% macro _bqx_merge(m, old) %}
    {%- set n = m[0] %}{% set na = m[1] %}{% set nb = m[2] -%}
    {%- set d = '((r_' ~ nb ~ ' - ' ~ old.r ~ ') + (dm_' ~ nb ~ ' - ' ~ old.dm ~ '))' -%}
    -- block of {{ n }} bars = the {{ na }} bars ending {{ nb }} bars ago, then the last {{ nb }}
        r_{{ nb }} as r_{{ n }},
        dm_{{ nb }} - {{ d }} * {{ na / n }} as dm_{{ n }},
        {{ old.c }} + c_{{ nb }} + {{ d }} * {{ d }} * {{ na * nb / n }} as c_{{ n }},
        greatest({{ old.mx }}, mx_{{ nb }}) as mx_{{ n }},
        least({{ old.mn }}, mn_{{ nb }}) as mn_{{ n }},
        {{ old.full }} and full_{{ nb }} as full_{{ n }}
{%- endmacro %}
