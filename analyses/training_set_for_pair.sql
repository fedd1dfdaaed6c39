-- A training set for one pair: the bar, its rate index and every family's features,
-- joined on ts_utc (what `bqx export` writes per pair and month). Compile with
--   bqx dbt -- compile --select training_set_for_pair --vars '{analysis_pair: gbpusd}'
-- and run the SQL in target/compiled/.
{%- set pair = var('analysis_pair', 'eurusd') %}

with bars as (

    select * from {{ ref('stg_m1_bars') }}
    where pair = '{{ pair }}'

),

momentum as (

    select * from {{ ref('bqx_' ~ pair) }}

),

rate_terms as (

    select * from {{ ref('reg_rate_' ~ pair) }}

),

momentum_terms as (

    select * from {{ ref('reg_bqx_' ~ pair) }}

),

final as (

    select
        bars.ts_utc,
        bars.open,
        bars.high,
        bars.low,
        bars.close,
        bars.volume,
        momentum.*,
        rate_terms.w60_prediction as rate_w60_prediction,
        rate_terms.w630_prediction as rate_w630_prediction,
        momentum_terms.w60_quadratic_term as bqx_w60_quadratic_term,
        momentum_terms.w60_linear_term as bqx_w60_linear_term,
        momentum_terms.w60_residual as bqx_w60_residual
    from bars
    inner join momentum on bars.ts_utc = momentum.ts_utc
    inner join rate_terms on bars.ts_utc = rate_terms.ts_utc
    inner join momentum_terms on bars.ts_utc = momentum_terms.ts_utc

)

select * from final
order by ts_utc
