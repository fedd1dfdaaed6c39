{#-
    technical: the classic technical indicators of one pair's rate-index bar, as
    TA-Lib (and, for a few, the `ta` package) computes them. One row per bar.

    The bar comes from `source` (the rate_index model: open_index, high_index,
    low_index, rate_index as close, volume), the BQX series from `momentum` (the
    pair's bqx table, column w15_bqx_return). The private helpers write the CTE
    chain: `_technical_windowed` (rolling windows and cumulative sums) then
    `_technical_recursive` (EMA-type and Wilder recursions, exact via doubling).
    See macros/_macros.yml for the arguments and the method.
-#}
{% macro technical(source, momentum, pair, ma_windows, incremental=true) %}
    {%- set where = _check_bar_args('technical', source, momentum, pair, ma_windows, 'a moving average needs 2 bars') -%}
    {{ return(adapter.dispatch('technical', 'bqx_warehouse')(source, momentum, where, ma_windows | map('int') | list, incremental)) }}
{% endmacro %}


{#- The output columns, in table order. -#}
{% macro _technical_columns(ma_windows) %}
    {%- set cols = [] -%}
    {%- for w in ma_windows %}{% do cols.append('sma_' ~ w) %}{% endfor -%}
    {%- for w in ma_windows %}{% do cols.append('ema_' ~ w) %}{% endfor -%}
    {%- do cols.extend([
        'rsi_14', 'macd', 'macd_signal', 'macd_hist', 'stoch_k', 'stoch_d',
        'cci_20', 'willr_14', 'roc_12', 'mom_10', 'mom_20', 'trix_15', 'ultosc',
        'adx_14', 'plus_di_14', 'minus_di_14', 'aroon_up_25', 'aroon_down_25',
        'atr_14', 'natr_14', 'trange', 'donchian_high_20', 'donchian_low_20',
        'keltner_upper_20', 'keltner_lower_20', 'awesome_osc', 'mass_index',
        'vortex_pos_14', 'vortex_neg_14', 'ulcer_14',
        'obv', 'ad', 'adosc', 'mfi_14', 'cmf_20', 'force_13', 'vpt', 'nvi', 'eom_14',
        'bqx_rsi_14', 'bqx_macd', 'bqx_macd_signal', 'bqx_macd_hist',
    ]) -%}
    {{- return(cols) -}}
{% endmacro %}


{% macro default__technical(source, momentum, where, ma_windows, incremental) %}
{%- set lookback = [_technical_windowed_lookback(ma_windows), _technical_recursive_lookback(ma_windows)] | max -%}
{%- set inc = _incremental_window(source, where, lookback, 'rate_index') if incremental else namespace(lower=none, after=none) -%}
{%- set rows_before = _reg_rows_before(source, where, inc) -%}
{%- set bqx_before = '0' if inc.lower is none else '(select count(w15_bqx_return) from ' ~ momentum ~ ' where ts_utc < ' ~ inc.lower ~ ')' -%}
{#- a bar without a volume adds none (HistData's bars carry 0) #}
with source_rows as (

{{ _pair_bar_rows(source, momentum, where, inc, [
    ['bars.rate_index::double precision', 'c'],
    ['bars.open_index::double precision', 'o'],
    ['bars.high_index::double precision', 'h'],
    ['bars.low_index::double precision', 'l'],
    ['coalesce(bars.volume, 0)::double precision', 'v'],
]) }}

),

bars as (

    -- rn: the bar's position in the pair's whole history (0 = first bar); rn_b: its
    -- position in the BQX series (0 = first non-NULL w15_bqx_return), NULL before it
    select
        ts_utc,
        c,
        o,
        h,
        l,
        v,
        b,
        {{ rows_before }} + row_number() over bars - 1 as rn,
        case when b is not null then {{ bqx_before }} + count(b) over bars - 1 end as rn_b
    from source_rows
    window bars as (order by ts_utc)

){{ _technical_windowed('bars', ma_windows, source, where, inc) }}{{ _technical_recursive('tw_out', ma_windows) }},

final as (

    select
        ts_utc,
        c as rate_index
        {%- for col in _technical_columns(ma_windows) %},
        {{ col }}
        {%- endfor %}
    from tr_out
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}

)

select * from final
{% endmacro %}
