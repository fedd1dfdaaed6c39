{#- 100 * close / baseline_close, written as 100 * (close / baseline_close) so that the
    baseline bar is exactly 100 (close / close is exactly 1 in floating point). The rest
    of the bar is on the same scale (open_index, high_index, low_index), with its volume,
    for the families that need a whole bar (technical, statistics). -#}
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
        100.0 * (bars.close / baselines.baseline_close) as rate_index,
        100.0 * (bars.open / baselines.baseline_close) as open_index,
        100.0 * (bars.high / baselines.baseline_close) as high_index,
        100.0 * (bars.low / baselines.baseline_close) as low_index,
        bars.volume
    from bars
    inner join baselines on bars.pair = baselines.pair

)

select * from final
