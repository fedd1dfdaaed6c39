{#-
    bollinger: Bollinger bands (TA-Lib BBANDS with an SMA middle band, 2 population
    standard deviations up and down) of the rate index and of w15_bqx_return.

    For each window W and bar t, over the W values ending at and including t, of
    each series: the mean (middle band), the population standard deviation sd,
    upper/lower = middle +/- 2 sd, width = (upper - lower) / |middle| and
    %b = (y - lower) / (upper - lower). The windows' means and centred sums of
    squares are built by exact block merges (see _merge_plan), so the cost does
    not grow with W and a flat window gives exactly sd = 0. See macros/_macros.yml.
-#}
{% macro bollinger(source, momentum, pair, windows) %}
    {%- set where = _check_bar_args('bollinger', source, momentum, pair, windows, 'a standard deviation needs 2 bars') -%}
    {{ return(adapter.dispatch('bollinger', 'bqx_warehouse')(source, momentum, where, windows | map('int') | list)) }}
{% endmacro %}


{#- The two series: (column suffix, stat prefix, input column in source_rows) -#}
{% macro _bollinger_series() %}
    {{- return([('rate', 'p', 'p'), ('bqx', 'b', 'b')]) -}}
{% endmacro %}


{% macro default__bollinger(source, momentum, where, windows) %}
{%- set base = _merge_base(windows) -%}
{%- set levels = _merge_plan(base, windows, chained=true, max_chain=1) -%}
{%- set window_max = windows | max -%}
{%- set stats = [] -%}
{%- for _, s, _ in _bollinger_series() %}{% for stat in ['r', 'dm', 'c', 'full'] %}{% do stats.append(s ~ stat) %}{% endfor %}{% endfor -%}
{%- set inc = _incremental_window(source, where, window_max - 1, 'rate_index') -%}
with source_rows as (

{{ _pair_bar_rows(source, momentum, where, inc, [['bars.rate_index::double precision', 'p']]) }}

),

base_lags as (

    -- {s}q_j = y[t - j]: the base block of {{ base }} values ending at t
    select
        ts_utc,
        p,
        b
        {%- for _, s, y in _bollinger_series() %}
        {%- for j in range(1, base) %},
        lag({{ y }}, {{ j }}) over bars as {{ s }}q_{{ j }}
        {%- endfor %}
        {%- endfor %}
    from source_rows
    window bars as (order by ts_utc)

),

blocks_0 as (

    -- each block is kept as its newest value r, the offset dm of its mean from r and
    -- C = sum (y - mean)^2, from exact differences of nearby values (a flat block has
    -- dm = C = 0 exactly), and whether all its values exist
    select
        ts_utc,
        p,
        b
        {%- for _, s, y in _bollinger_series() %}
        {%- set diffs = [] %}
        {%- for j in range(1, base) %}{% do diffs.append('(' ~ s ~ 'q_' ~ j ~ ' - ' ~ y ~ ')') %}{% endfor %},
        {{ y }} as {{ s }}r_{{ base }},
        {% if base > 1 %}({{ diffs | join(' + ') }}) / {{ base }}.0{% else %}0.0{% endif %} as {{ s }}dm_{{ base }},
        {% if base > 1 %}({{ diffs | join(' ^ 2 + ') }} ^ 2) - ({{ diffs | join(' + ') }}) ^ 2 / {{ base }}.0{% else %}0.0{% endif %} as {{ s }}c_{{ base }},
        {% if base > 1 %}{{ s }}q_{{ base - 1 }} is not null and {% endif %}{{ y }} is not null as {{ s }}full_{{ base }}
        {%- endfor %}
    from base_lags
    {#- evaluated once: the lag()s of the next pass read these columns #}
    order by ts_utc
    offset 0

){{ _merge_passes(levels, windows, base, stats, _bollinger_merge, ['ts_utc', 'p', 'b']) }},

moments as (

    select
        ts_utc,
        p,
        b
        {%- for w in windows %}
        {%- for _, s, y in _bollinger_series() %},
        case when {{ s }}full_{{ w }} then {{ s }}r_{{ w }} + {{ s }}dm_{{ w }} end as {{ s }}mean_{{ w }},
        case when {{ s }}full_{{ w }} then 2.0 * sqrt(greatest({{ s }}c_{{ w }}, 0.0) / {{ w }}) end as {{ s }}dev2_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from blocks_{{ levels | length }}
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}

),

bands as (

    select
        ts_utc,
        p,
        b
        {%- for w in windows %}
        {%- for _, s, y in _bollinger_series() %},
        {{ s }}mean_{{ w }} + {{ s }}dev2_{{ w }} as {{ s }}upper_{{ w }},
        {{ s }}mean_{{ w }} as {{ s }}middle_{{ w }},
        {{ s }}mean_{{ w }} - {{ s }}dev2_{{ w }} as {{ s }}lower_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from moments

),

final as (

    select
        ts_utc,
        p as rate_index,
        b as w15_bqx_return
        {%- for w in windows %}
        {%- for name, s, y in _bollinger_series() %}
        {%- set pre = 'bb_' ~ name ~ '_' ~ w %},
        {{ s }}upper_{{ w }} as {{ pre }}_upper,
        {{ s }}middle_{{ w }} as {{ pre }}_middle,
        {{ s }}lower_{{ w }} as {{ pre }}_lower,
        ({{ s }}upper_{{ w }} - {{ s }}lower_{{ w }}) / nullif(abs({{ s }}middle_{{ w }}), 0.0) as {{ pre }}_width,
        ({{ y }} - {{ s }}lower_{{ w }}) / nullif({{ s }}upper_{{ w }} - {{ s }}lower_{{ w }}, 0.0) as {{ pre }}_pct_b
        {%- endfor %}
        {%- endfor %}
    from bands

)

select * from final
{% endmacro %}


{#- The merge of block m = [n, a, b] for both series: `old` holds SQL for the older
    block's stats, the newer block's are columns. delta = mean(newer) - mean(older). -#}
{% macro _bollinger_merge(m, old) %}
    {%- set n = m[0] %}{% set na = m[1] %}{% set nb = m[2] -%}
    -- block of {{ n }} values = the {{ na }} ending {{ nb }} bars ago, then the last {{ nb }}
    {%- for _, s, _ in _bollinger_series() %}
    {%- set d = '((' ~ s ~ 'r_' ~ nb ~ ' - ' ~ old[s ~ 'r'] ~ ') + (' ~ s ~ 'dm_' ~ nb ~ ' - ' ~ old[s ~ 'dm'] ~ '))' %}
        {{ s }}r_{{ nb }} as {{ s }}r_{{ n }},
        {{ s }}dm_{{ nb }} - {{ d }} * {{ na / n }} as {{ s }}dm_{{ n }},
        {{ old[s ~ 'c'] }} + {{ s }}c_{{ nb }} + {{ d }} * {{ d }} * {{ na * nb / n }} as {{ s }}c_{{ n }},
        {{ old[s ~ 'full'] }} and {{ s }}full_{{ nb }} as {{ s }}full_{{ n }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endmacro %}
