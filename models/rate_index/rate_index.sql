{#- 100 * close / baseline_close, written as 100 * (close / baseline_close) so that the
    baseline bar is exactly 100 (close / close is exactly 1 in floating point). -#}
with bars as (

    select * from {{ ref('stg_m1_bars') }}

),

baselines as (

    select * from {{ ref('baseline_rates') }}

),

final as (

    select
        bars.pair,
        bars.ts_utc,
        bars.close,
        baselines.baseline_close,
        100.0 * (bars.close / baselines.baseline_close) as rate_index
    from bars
    inner join baselines on bars.pair = baselines.pair

)

select * from final
