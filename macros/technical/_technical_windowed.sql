{#- STUB (to be replaced): the rolling-window and cumulative indicators. Emits
    ",\n\n<cte> as (...)" ... ending in a CTE named tw_out that carries every column
    of `input` plus its own outputs. -#}
{% macro _technical_windowed_lookback(ma_windows) %}
    {{- return(ma_windows | max) -}}
{% endmacro %}

{% macro _technical_windowed(input, ma_windows, source, where, inc) %},

tw_out as (

    select
        *
        {%- for w in ma_windows %},
        null::double precision as sma_{{ w }}
        {%- endfor %}
        {%- for col in ['stoch_k', 'stoch_d', 'cci_20', 'willr_14', 'roc_12', 'mom_10', 'mom_20', 'ultosc',
            'aroon_up_25', 'aroon_down_25', 'trange', 'donchian_high_20', 'donchian_low_20', 'awesome_osc',
            'vortex_pos_14', 'vortex_neg_14', 'ulcer_14', 'obv', 'ad', 'mfi_14', 'cmf_20', 'vpt', 'nvi', 'eom_14'] %},
        null::double precision as {{ col }}
        {%- endfor %}
    from {{ input }}

)
{%- endmacro %}

{#- Per output column: {'first': first bar index with a value, 'series': 'rn' (the
    pair's bars) or 'rn_b' (the BQX series), 'nullable': may be NULL after the
    warm-up (a division by zero), 'lo'/'hi': bounds}. Read by the technical_contract test. -#}
{% macro _technical_windowed_contract(ma_windows) %}
    {{- return({}) -}}
{% endmacro %}
