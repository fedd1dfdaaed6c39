with source as (

    select * from {{ source('raw', 'm1_bars') }}

),

final as (

    select
        pair,
        ts_utc,
        open::double precision as open,
        high::double precision as high,
        low::double precision as low,
        close::double precision as close,
        volume
    from source

)

select * from final
