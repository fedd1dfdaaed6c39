{#-
    The model has exactly the expected columns: `leading_columns`, then for every
    window W of var `windows_var` one column per entry of `stats`, named by `pattern`
    (`{w}` and `{stat}` are replaced), then `trailing_columns`, and nothing else. For
    reg_rate and reg_bqx this is their schema alignment: same windows, all seven
    columns each. Returns one row per missing or unexpected column.
-#}
{% test columns_match_windows(model, leading_columns, windows_var, stats, pattern, trailing_columns=[]) %}
{%- set expected = leading_columns | list -%}
{%- for w in var(windows_var) -%}
    {%- for s in stats -%}
        {%- do expected.append(pattern | replace("{w}", w | string) | replace("{stat}", s)) -%}
    {%- endfor -%}
{%- endfor -%}
{%- do expected.extend(trailing_columns) -%}
with expected as (

    select column_name
    from (values
        {%- for c in expected %}
        ('{{ c }}'){{ ',' if not loop.last }}
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
