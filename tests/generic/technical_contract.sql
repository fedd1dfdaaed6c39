{#-
    Contracts of a technical_{pair} table, per column (from the macros'
    _technical_windowed_contract and _technical_recursive_contract):
      - NULL exactly during the column's warm-up: before bar `first` of the pair's
        history, or for the BQX columns of the BQX series (from the first non-NULL
        w15_bqx_return of `momentum`);
      - no NULL after the warm-up, except for the columns that may divide by zero
        (their docs say where);
      - the bounded oscillators within their ranges.
    Returns one row per column and problem, with how many rows break it.
-#}
{% test technical_contract(model, momentum) %}
{%- set ma_windows = var('ma_windows') | map('int') | list -%}
{%- set contract = {} -%}
{%- do contract.update(_technical_windowed_contract(ma_windows)) -%}
{%- do contract.update(_technical_recursive_contract(ma_windows)) -%}
with numbered as (

    select
        t.*,
        row_number() over bars - 1 as rn,
        case when m.w15_bqx_return is not null then count(m.w15_bqx_return) over bars - 1 end as rn_b
    from {{ model }} as t
    left join {{ momentum }} as m on t.ts_utc = m.ts_utc
    window bars as (order by t.ts_utc)

),

checks as (

    select null::text as indicator, null::text as problem
    {%- for col, k in contract | dictsort %}
    {%- set pos = 'rn' if k.get('series', 'rn') == 'rn' else 'rn_b' %}
    union all
    select
        '{{ col }}',
        case
            when ({{ pos }} is null or {{ pos }} < {{ k['first'] }}) and {{ col }} is not null then 'value during the warm-up'
            {%- if not k.get('nullable', false) %}
            when {{ pos }} >= {{ k['first'] }} and {{ col }} is null then 'NULL after the warm-up'
            {%- endif %}
            {%- if k.get('lo') is not none %}
            when {{ col }} < {{ k['lo'] }} then 'below {{ k["lo"] }}'
            {%- endif %}
            {%- if k.get('hi') is not none %}
            when {{ col }} > {{ k['hi'] }} then 'above {{ k["hi"] }}'
            {%- endif %}
        end
    from numbered
    {%- endfor %}

),

final as (

    select indicator, problem, count(*) as n_rows
    from checks
    where problem is not null
    group by indicator, problem

)

select * from final
{% endtest %}
