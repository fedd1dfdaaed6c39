{#-
    The contract of a bqx_momentum model (SPEC 2.2), in one scan of the table: for
    every window W of var `windows_var`, all six wW_bqx_ columns are NULL on exactly the first W rows
    (fewer than W earlier bars) and non-NULL after; min <= avg <= max; stdev >= 0;
    return = W * avg. Returns one row per violation.
-#}
{% test bqx_momentum_contract(model, windows_var='bqx_windows') %}
{%- set windows = var(windows_var) -%}
{%- set tol = var('bqx_test_rel_tol', 1.0e-9) -%}
{%- set stats = ['return', 'max', 'min', 'avg', 'stdev', 'endpoint'] -%}
with scanned as (

    select
        *,
        row_number() over (order by ts_utc) as bar_number
    from {{ model }}

),

violations as (
    {%- for w in windows %}
    {%- set p = 'w' ~ w ~ '_bqx_' %}
    select ts_utc, {{ w }} as window_bars, 'NULL after the warm-up, or a value during it' as check_failed
    from scanned
    where
        {%- for s in stats %}
        ({{ p }}{{ s }} is null) <> (bar_number <= {{ w }}){{ ' or' if not loop.last }}
        {%- endfor %}
    union all
    select ts_utc, {{ w }}, 'not min <= avg <= max'
    from scanned
    where {{ p }}min > {{ p }}avg + {{ tol }} * abs({{ p }}avg) or {{ p }}avg > {{ p }}max + {{ tol }} * abs({{ p }}avg)
    union all
    select ts_utc, {{ w }}, 'stdev is negative'
    from scanned
    where {{ p }}stdev < 0
    union all
    select ts_utc, {{ w }}, 'return is not W * avg'
    from scanned
    where abs({{ p }}return - {{ w }} * {{ p }}avg) > {{ tol }} * abs({{ p }}return) + 1e-15
    {{ 'union all' if not loop.last }}
    {%- endfor %}

)

select * from violations
{% endtest %}
