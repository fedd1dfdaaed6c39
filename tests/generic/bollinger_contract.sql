{#-
    Contracts of a bollinger_{pair} table, for every window W of var bollinger_windows
    and both series (the rate index and w15_bqx_return of `momentum`):
      - the bands are NULL exactly while fewer than W values of the series end at t
        (the BQX series starts at its first non-NULL value);
      - upper >= middle >= lower, and width >= 0;
      - width is NULL only where the middle band is 0, %b only where the bands meet
        (a flat window).
    Returns one row per column and problem, with how many rows break it.
-#}
{% test bollinger_contract(model, momentum) %}
with numbered as (

    select
        t.*,
        row_number() over bars as n_rate,
        count(t.w15_bqx_return) over bars as n_bqx
    from {{ model }} as t
    window bars as (order by t.ts_utc)

),

checks as (
    {%- for w in var('bollinger_windows') %}
    {%- set outer_last = loop.last %}
    {%- for src in ['rate', 'bqx'] %}
    {%- set c = 'bb_' ~ src ~ '_' ~ w %}
    {%- set full = '(n_' ~ src ~ ' >= ' ~ w ~ (' and w15_bqx_return is not null' if src == 'bqx' else '') ~ ')' %}

    select
        '{{ c }}' as band,
        case
            when not {{ full }} and ({{ c }}_upper is not null or {{ c }}_middle is not null or {{ c }}_lower is not null)
                then 'band during the warm-up'
            when {{ full }} and ({{ c }}_upper is null or {{ c }}_middle is null or {{ c }}_lower is null)
                then 'NULL band after the warm-up'
            when {{ c }}_upper < {{ c }}_middle or {{ c }}_middle < {{ c }}_lower then 'bands out of order'
            when {{ c }}_width < 0 then 'negative width'
            when {{ c }}_width is null and {{ c }}_middle <> 0 then 'NULL width with a non-zero middle band'
            when {{ c }}_pct_b is null and {{ c }}_upper <> {{ c }}_lower then 'NULL %b with open bands'
        end as problem
    from numbered
    {{ 'union all' if not (outer_last and loop.last) }}
    {%- endfor %}
    {%- endfor %}

),

final as (

    select band, problem, count(*) as n_rows
    from checks
    where problem is not null
    group by band, problem

)

select * from final
{% endtest %}
