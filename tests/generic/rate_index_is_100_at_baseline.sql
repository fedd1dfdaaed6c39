{#- The rate index is exactly 100 at each pair's baseline bar. -#}
{% test rate_index_is_100_at_baseline(model) %}
select r.pair, r.ts_utc, r.rate_index
from {{ model }} as r
inner join {{ ref('baseline_rates') }} as b
    on r.pair = b.pair and r.ts_utc = b.baseline_ts
where r.rate_index <> 100
{% endtest %}
