{#-
    The contract of a correlation_bqx model (SPEC 2.4), checked in one scan of the table.
    `return_column` is the pair's BQX return the model carries; it is also the y of
    reg_bqx (var reg_bqx_source_column), whose wW terms exist once W non-NULL returns
    end at a row, so the term covariances of window W exist once 2W - 1 do.
    For every term window W of var `term_windows_var`:
      - the three covariances are NULL exactly while fewer than 2W - 1 non-NULL returns
        end at the row (the warm-up), and non-NULL everywhere else;
      - the correlations are in [-1, 1], NULL during the warm-up, and after it NULL only
        where a standard deviation is 0, i.e. only where their covariance is exactly 0.
    For every pair window W of var `pair_windows_var`:
      - the cross-pair correlations are in [-1, 1], and NULL where the pair's return is
        NULL or fewer than W non-NULL returns end at the row (fewer than W joined rows).
    And the relative strengths are NULL where the pair's return is NULL.
    Returns one row per violation, naming the window and the check.
-#}
{% test correlation_bqx_contract(model, return_column='w15_bqx_return', term_windows_var='term_cov_windows', pair_windows_var='pair_corr_windows') %}
{%- set term_windows = var(term_windows_var) -%}
{%- set pair_windows = var(pair_windows_var) -%}
{%- set products = ['quad_lin', 'resid_quad', 'resid_lin'] -%}
with scanned as (

    select
        *,
        count({{ return_column }}) over (order by ts_utc rows unbounded preceding) as n_returns
        {%- for w in term_windows %},
        count({{ return_column }}) over (order by ts_utc rows between {{ 2 * w - 2 }} preceding and current row) as n_valid_{{ w }}
        {%- endfor %}
    from {{ model }}

),

violations as (
    {%- for w in term_windows %}
    {%- for p in products %}
    {%- set cov = 'cov_' ~ p ~ '_bqx_' ~ w ~ 'min' %}
    {%- set corr = 'corr_' ~ p ~ '_bqx_' ~ w ~ 'min' %}
    select ts_utc, {{ w }} as window_rows, '{{ cov }}: NULL after the warm-up, or a value during it' as check_failed
    from scanned
    where ({{ cov }} is null) <> (n_valid_{{ w }} < {{ 2 * w - 1 }})
    union all
    select ts_utc, {{ w }}, '{{ corr }}: outside [-1, 1] or a value during the warm-up'
    from scanned
    where {{ corr }} < -1 or {{ corr }} > 1 or ({{ corr }} is not null and n_valid_{{ w }} < {{ 2 * w - 1 }})
    union all
    select ts_utc, {{ w }}, '{{ corr }}: NULL though no standard deviation is 0 (covariance not 0)'
    from scanned
    where {{ corr }} is null and {{ cov }} <> 0
    union all
    {%- endfor %}
    {%- endfor %}
    {%- for w in pair_windows %}
    {%- for side in ['base', 'quote'] %}
    {%- set corr = 'corr_' ~ side ~ '_pairs_' ~ w ~ 'min' %}
    select ts_utc, {{ w }}, '{{ corr }}: outside [-1, 1], or a value without the pair''s return or W joined rows'
    from scanned
    where
        {{ corr }} < -1 or {{ corr }} > 1
        or ({{ corr }} is not null and ({{ return_column }} is null or n_returns < {{ w }}))
    union all
    {%- endfor %}
    {%- endfor %}
    select ts_utc, null, 'relative strength without the pair''s return'
    from scanned
    where {{ return_column }} is null and (rel_strength_base is not null or rel_strength_quote is not null)

)

select * from violations
{% endtest %}
