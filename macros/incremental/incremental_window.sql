{#-
    The one lookback mechanism of every per-pair incremental model.

    `_incremental_window(source, where, lookback_rows, watch_column)` decides what
    an incremental run processes and returns a namespace with
      - `lower`: SQL for the first source ts_utc to read (the `lookback_rows`-th
        row before the first row to recompute), or none to read everything;
      - `after`: SQL for the ts_utc after which rows are (re)computed and written,
        or none to write everything.

    Decisions (each logged):
      - full refresh or a new table: read and write everything;
      - var `reprocess_from` set: recompute rows at or after that time;
      - the source has more rows up to the stored end than the table (history was
        back-filled), or the stored copy of `watch_column` on the last stored row
        differs from the source (its input was recomputed, e.g. a new rate-index
        baseline): recompute the whole pair, so two versions are never mixed;
      - the source has fewer rows than the table (bars were deleted): stop with a
        message saying to run a full refresh;
      - otherwise only rows after the stored end.
    Rows are written with the delete+insert strategy on ts_utc, so recomputed rows
    replace the stored ones.
-#}
{% macro _incremental_window(source, where, lookback_rows, watch_column) %}
    {%- set result = namespace(lower=none, after=none) -%}
    {%- if not is_incremental() or not execute -%}
        {{- return(result) -}}
    {%- endif -%}
    {%- set reprocess_from = var('reprocess_from', '') -%}
    {%- if reprocess_from -%}
        {%- set after = "(timestamptz '" ~ reprocess_from ~ "' - interval '1 microsecond')" -%}
        {{- log(this.identifier ~ ": recomputing rows from " ~ reprocess_from ~ " (var reprocess_from)", info=true) -}}
    {%- else -%}
        {%- set check -%}
            with stored as (
                select
                    max(ts_utc) as last_ts,
                    count(*) as n_rows
                from {{ this }}
            )
            select
                stored.last_ts,
                stored.n_rows,
                (
                    select count(*) from {{ source }}
                    where {{ where }} and ts_utc <= stored.last_ts
                ) as n_source,
                (
                    select t.{{ watch_column }} is not distinct from s.{{ watch_column }}
                    from {{ this }} as t
                    inner join (select * from {{ source }} where {{ where }}) as s on s.ts_utc = t.ts_utc
                    where t.ts_utc = stored.last_ts
                ) as watch_same
            from stored
        {%- endset -%}
        {%- set row = run_query(check).rows[0] -%}
        {%- if row['last_ts'] is none -%}
            {%- set after = none -%}
        {%- elif row['n_source'] < row['n_rows'] -%}
            {{- exceptions.raise_compiler_error(
                this.identifier ~ ": the source has fewer bars up to " ~ row['last_ts'] ~ " (" ~ row['n_source']
                ~ ") than the table (" ~ row['n_rows'] ~ "): bars were deleted. Run a full refresh: "
                ~ "dbt build --full-refresh --select " ~ this.identifier ~ "+") -}}
        {%- elif row['n_source'] > row['n_rows'] -%}
            {{- log(this.identifier ~ ": history was back-filled (" ~ (row['n_source'] - row['n_rows'])
                ~ " new bars before the stored end): recomputing the whole pair", info=true) -}}
            {%- set after = none -%}
        {%- elif not row['watch_same'] -%}
            {{- log(this.identifier ~ ": its input " ~ watch_column ~ " changed (e.g. a new rate-index baseline):"
                ~ " recomputing the whole pair", info=true) -}}
            {%- set after = none -%}
        {%- else -%}
            {%- set after = "timestamptz '" ~ row['last_ts'] ~ "'" -%}
        {%- endif -%}
    {%- endif -%}
    {%- if after is not none -%}
        {%- set result.after = after -%}
        {%- set result.lower -%}
            coalesce((
                select min(lb.ts_utc) from (
                    select ts_utc from {{ source }}
                    where {{ where }} and ts_utc <= {{ after }}
                    order by ts_utc desc
                    limit {{ lookback_rows }}
                ) as lb
            ), {{ after }})
        {%- endset -%}
    {%- endif -%}
    {{- return(result) -}}
{% endmacro %}
