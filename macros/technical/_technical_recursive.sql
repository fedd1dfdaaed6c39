{#- STUB (to be replaced): the EMA-type and Wilder indicators. Emits
    ",\n\n<cte> as (...)" ... ending in a CTE named tr_out that carries every column
    of `input` plus its own outputs. -#}
{% macro _technical_recursive_lookback(ma_windows) %}
    {{- return(ma_windows | max) -}}
{% endmacro %}

{% macro _technical_recursive(input, ma_windows) %},

tr_out as (

    select
        *
        {%- for w in ma_windows %},
        null::double precision as ema_{{ w }}
        {%- endfor %}
        {%- for col in ['rsi_14', 'macd', 'macd_signal', 'macd_hist', 'trix_15', 'adx_14', 'plus_di_14',
            'minus_di_14', 'atr_14', 'natr_14', 'keltner_upper_20', 'keltner_lower_20', 'mass_index', 'adosc',
            'force_13', 'bqx_rsi_14', 'bqx_macd', 'bqx_macd_signal', 'bqx_macd_hist'] %},
        null::double precision as {{ col }}
        {%- endfor %}
    from {{ input }}

)
{%- endmacro %}

{#- Per output column: {'first': first bar index with a value, 'series': 'rn' (the
    pair's bars) or 'rn_b' (the BQX series), 'nullable': may be NULL after the
    warm-up (a division by zero), 'lo'/'hi': bounds}. Read by the technical_contract test. -#}
{% macro _technical_recursive_contract(ma_windows) %}
    {{- return({}) -}}
{% endmacro %}
