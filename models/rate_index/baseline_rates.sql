{#- The baseline bar of each pair: its first bar at or after var rate_index_base_ts,
    else (no bar reaches the base time) its first bar. -#}
with bars as (

    select * from {{ ref('stg_m1_bars') }}

),

pairs as (

    select pair from {{ ref('currency_pairs') }}

),

ranked as (

    select
        bars.pair,
        bars.ts_utc,
        bars.close,
        row_number() over (
            partition by bars.pair
            order by
                bars.ts_utc < timestamptz '{{ var("rate_index_base_ts") }}',
                bars.ts_utc
        ) as preference
    from bars
    inner join pairs on bars.pair = pairs.pair

),

final as (

    select
        pair,
        ts_utc as baseline_ts,
        close as baseline_close
    from ranked
    where preference = 1

)

select * from final
