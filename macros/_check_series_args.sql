{#-
    Compile-time checks shared by the per-series macros (reg_terms, bqx_momentum):
    a relation, a plain column name, a non-empty list of distinct integer windows of at
    least `min_window` bars (`why` says why), and an optional pair name. Raises one
    clear compiler error naming the macro and the argument; returns the pair filter
    for the source ("pair = '...'" or "true").
-#}
{% macro _check_series_args(macro_name, source, column_arg, column, windows, min_window, why, pair) %}
    {%- if source is none -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": argument 'source' (a ref() or source()) is required") }}
    {%- endif -%}
    {%- if column is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', column) -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": '" ~ column_arg ~ "' must be a column name, got " ~ column) }}
    {%- endif -%}
    {%- if windows is string or windows is not iterable or windows | length == 0 -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": 'windows' must be a non-empty list of bar counts, got " ~ windows) }}
    {%- endif -%}
    {%- for w in windows -%}
        {%- if w is not number or w != w | int or w < min_window -%}
            {{ exceptions.raise_compiler_error(macro_name ~ ": every window must be an integer >= " ~ min_window ~ " (" ~ why ~ "), got " ~ w) }}
        {%- endif -%}
    {%- endfor -%}
    {%- if windows | unique | list | length != windows | length -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": 'windows' has duplicates: " ~ windows) }}
    {%- endif -%}
    {%- if pair is not none and not modules.re.match('^[a-z]{6}$', pair | string) -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": 'pair' must match ^[a-z]{6}$, got " ~ pair) }}
    {%- endif -%}
    {{- return("pair = '" ~ pair ~ "'" if pair is not none else 'true') -}}
{% endmacro %}


{#- The checks of the whole-bar families (technical, bollinger): those of
    _check_series_args, plus a required `momentum` relation (the pair's bqx table)
    and a required pair. Returns the pair filter for the source. -#}
{% macro _check_bar_args(macro_name, source, momentum, pair, windows, why) %}
    {%- if momentum is none -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": argument 'momentum' (a ref() to the pair's bqx table) is required") }}
    {%- endif -%}
    {%- if pair is none -%}
        {{ exceptions.raise_compiler_error(macro_name ~ ": argument 'pair' is required (the source holds every pair)") }}
    {%- endif -%}
    {{- return(_check_series_args(macro_name, source, 'price_column', 'rate_index', windows, 2, why, pair)) -}}
{% endmacro %}
