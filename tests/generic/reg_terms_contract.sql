{#-
    The contract of a reg_terms model (SPEC 2.3), checked in one scan of the table:
    for every window W of var `windows_var` (so --vars overrides are followed) and row,
      - the three terms sum to the prediction and residual = y - prediction, within
        var bqx_test_rel_tol relative to the magnitudes involved;
      - r2 is in [0, 1] and rmse >= 0;
      - all seven wW_ columns are NULL exactly while fewer than W non-NULL y values
        end at the row (the warm-up), and non-NULL everywhere else.
    Returns one row per violation, naming the window and the check.
-#}
{% test reg_terms_contract(model, y_column, windows_var='reg_windows') %}
{%- set windows = var(windows_var) -%}
{%- set tol = var('bqx_test_rel_tol', 1.0e-9) -%}
{%- set stats = ['quadratic_term', 'linear_term', 'constant_term', 'prediction', 'residual', 'r2', 'rmse'] -%}
with scanned as (

    select
        *,
        {%- for w in windows %}
        count({{ y_column }}) over (order by ts_utc rows between {{ w - 1 }} preceding and current row) as n_valid_{{ w }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ model }}

),

violations as (
    {%- for w in windows %}
    {%- set p = 'w' ~ w ~ '_' %}
    select ts_utc, {{ w }} as window_bars, 'terms do not sum to the prediction' as check_failed
    from scanned
    where abs({{ p }}quadratic_term + {{ p }}linear_term + {{ p }}constant_term - {{ p }}prediction)
        > {{ tol }} * (abs({{ p }}quadratic_term) + abs({{ p }}linear_term) + abs({{ p }}constant_term) + abs({{ p }}prediction) + 1e-300)
    union all
    select ts_utc, {{ w }}, 'residual is not y - prediction'
    from scanned
    where abs({{ y_column }} - {{ p }}prediction - {{ p }}residual)
        > {{ tol }} * (abs({{ y_column }}) + abs({{ p }}prediction) + 1e-300)
    union all
    select ts_utc, {{ w }}, 'r2 outside [0, 1]'
    from scanned
    where {{ p }}r2 < 0 or {{ p }}r2 > 1
    union all
    select ts_utc, {{ w }}, 'rmse is negative'
    from scanned
    where {{ p }}rmse < 0
    union all
    select ts_utc, {{ w }}, 'NULL where the window is full, or a value during the warm-up'
    from scanned
    where
        {%- for s in stats %}
        ({{ p }}{{ s }} is null) <> (n_valid_{{ w }} < {{ w }}){{ ' or' if not loop.last }}
        {%- endfor %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}

)

select * from violations
{% endtest %}
