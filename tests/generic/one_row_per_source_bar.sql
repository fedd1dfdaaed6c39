{#-
    The model has one row per bar of its source (same ts_utc set): every source bar
    (optionally of one `pair`) has a row, and no row lacks a source bar. Returns the
    ts_utc values that are only on one side.
-#}
{% test one_row_per_source_bar(model, source, pair=none) %}
with source_bars as (

    select ts_utc from {{ source }}
    {%- if pair is not none %}
    where pair = '{{ pair }}'
    {%- endif %}

),

model_rows as (

    select ts_utc from {{ model }}

),

final as (

    select
        coalesce(s.ts_utc, m.ts_utc) as ts_utc,
        case when m.ts_utc is null then 'source bar without a row' else 'row without a source bar' end as problem
    from source_bars as s
    full outer join model_rows as m on s.ts_utc = m.ts_utc
    where s.ts_utc is null or m.ts_utc is null

)

select * from final
{% endtest %}
