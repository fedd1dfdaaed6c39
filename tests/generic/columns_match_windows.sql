{#-
    The model has exactly the expected columns: `leading_columns`, then for every
    window W of var `windows_var` one column per entry of `stats`, named by `pattern`
    (`{w}` and `{stat}` are replaced), and nothing else. For reg_rate and reg_bqx
    this is their schema alignment: same windows, all seven columns each.
    Returns one row per missing or unexpected column.
-#}
{% test columns_match_windows(model, leading_columns, windows_var, stats, pattern) %}
{%- set windows = var(windows_var) -%}
with expected as (

    select column_name
    from (values
        {%- for c in leading_columns %}
        ('{{ c }}'){{ ',' }}
        {%- endfor %}
        {%- for w in windows %}
        {%- set outer_last = loop.last %}
        {%- for s in stats %}
        ('{{ pattern | replace("{w}", w | string) | replace("{stat}", s) }}'){{ ',' if not (outer_last and loop.last) }}
        {%- endfor %}
        {%- endfor %}
    ) as v (column_name)

),

actual as (

    select column_name::text as column_name
    from information_schema.columns
    where table_schema = '{{ model.schema }}' and table_name = '{{ model.identifier }}'

),

final as (

    select coalesce(e.column_name, a.column_name) as column_name,
        case when a.column_name is null then 'missing' else 'unexpected' end as problem
    from expected as e
    full outer join actual as a on e.column_name = a.column_name
    where e.column_name is null or a.column_name is null

)

select * from final
{% endtest %}
