{#-
    The rows of one pair's bars that a whole-bar family reads (technical, bollinger):
    the rate_index model `source` filtered by `where`, its columns `columns` (a list of
    [SQL expression over `bars`, alias]) and the pair's w15_bqx_return from `momentum`
    as b, joined on ts_utc, from the incremental run's first row to read (inc.lower)
    on. The body of a select, for a `source_rows` CTE.
-#}
{% macro _pair_bar_rows(source, momentum, where, inc, columns) %}
    select
        bars.ts_utc,
        {%- for expr, name in columns %}
        {{ expr }} as {{ name }},
        {%- endfor %}
        momentum.w15_bqx_return::double precision as b
    from {{ source }} as bars
    left join {{ momentum }} as momentum on bars.ts_utc = momentum.ts_utc
    where bars.{{ where }}
    {%- if inc.lower is not none %}
        and bars.ts_utc >= {{ inc.lower }}
    {%- endif %}
{%- endmacro %}
