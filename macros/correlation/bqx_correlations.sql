{#-
    bqx_correlations: term covariances and cross-pair correlations of one pair (SPEC 2.4).

    One call is a whole `correlation_bqx_{pair}` model: per bar of `source` (the pair's
    reg_bqx model), the sample covariance and Pearson correlation of its regression
    terms over the last W rows, and the mean rolling correlation of the pair's BQX
    return with its base- and quote-related pairs, joined on ts_utc.
    See macros/_macros.yml for the arguments and the method, docs/correlation.md for
    the precision measurements.
-#}
{% macro bqx_correlations(
    source,
    momentum,
    pair,
    base_related,
    quote_related,
    term_windows,
    pair_windows,
    return_column='w15_bqx_return',
    incremental=true
) %}
    {%- set name = 'bqx_correlations' -%}
    {%- if source is none or momentum is none -%}
        {{ exceptions.raise_compiler_error(name ~ ": arguments 'source' (the pair's reg_bqx ref()) and 'momentum' (its bqx ref()) are required") }}
    {%- endif -%}
    {%- if pair is not string or not modules.re.match('^[a-z]{6}$', pair) -%}
        {{ exceptions.raise_compiler_error(name ~ ": 'pair' must match ^[a-z]{6}$, got " ~ pair) }}
    {%- endif -%}
    {%- if return_column is not string or not modules.re.match('^[a-z_][a-z0-9_]*$', return_column) -%}
        {{ exceptions.raise_compiler_error(name ~ ": 'return_column' must be a column name, got " ~ return_column) }}
    {%- endif -%}
    {%- for arg, windows in [('term_windows', term_windows), ('pair_windows', pair_windows)] -%}
        {%- if windows is string or windows is not iterable or windows | length == 0 -%}
            {{ exceptions.raise_compiler_error(name ~ ": '" ~ arg ~ "' must be a non-empty list of row counts, got " ~ windows) }}
        {%- endif -%}
        {%- for w in windows -%}
            {%- if w is not number or w != w | int or w < 2 -%}
                {{ exceptions.raise_compiler_error(name ~ ": every window of '" ~ arg ~ "' must be an integer >= 2 (a sample covariance needs 2 rows), got " ~ w) }}
            {%- endif -%}
        {%- endfor -%}
        {%- if windows | unique | list | length != windows | length -%}
            {{ exceptions.raise_compiler_error(name ~ ": '" ~ arg ~ "' has duplicates: " ~ windows) }}
        {%- endif -%}
    {%- endfor -%}
    {%- set related = [] -%}
    {%- for side, entries, shared in [('base', base_related, pair[:3]), ('quote', quote_related, pair[3:])] -%}
        {%- if entries is string or entries is not iterable or entries | length == 0 -%}
            {{ exceptions.raise_compiler_error(name ~ ": '" ~ side ~ "_related' must be a non-empty list of {'pair': ..., 'momentum': ref(...), 'sign': 1 or -1}") }}
        {%- endif -%}
        {%- for entry in entries -%}
            {%- if entry is not mapping or entry.get('momentum') is none -%}
                {{ exceptions.raise_compiler_error(name ~ ": every entry of '" ~ side ~ "_related' must be {'pair': ..., 'momentum': ref(...), 'sign': 1 or -1}, got " ~ entry) }}
            {%- endif -%}
            {%- set other = entry.get('pair') -%}
            {%- if other is not string or not modules.re.match('^[a-z]{6}$', other) or other == pair -%}
                {{ exceptions.raise_compiler_error(name ~ ": related pair must match ^[a-z]{6}$ and differ from " ~ pair ~ ", got " ~ other) }}
            {%- endif -%}
            {%- if other[:3] != shared and other[3:] != shared -%}
                {{ exceptions.raise_compiler_error(name ~ ": " ~ other ~ " is not " ~ side ~ "-related to " ~ pair ~ " (it does not contain " ~ shared ~ ")") }}
            {%- endif -%}
            {#- same side of the shared currency in both pairs: +1, else -1 -#}
            {%- set expected_sign = 1 if (other[:3] == shared) == (side == 'base') else -1 -%}
            {%- if entry.get('sign') != expected_sign -%}
                {{ exceptions.raise_compiler_error(name ~ ": the sign of " ~ other ~ " for " ~ pair ~ " must be " ~ expected_sign
                    ~ " (" ~ shared ~ " is on the " ~ ('same' if expected_sign == 1 else 'other') ~ " side), got " ~ entry.get('sign')) }}
            {%- endif -%}
            {%- if related | selectattr('side', 'equalto', side) | selectattr('pair', 'equalto', other) | list | length > 0 -%}
                {{ exceptions.raise_compiler_error(name ~ ": " ~ other ~ " is listed twice in '" ~ side ~ "_related'") }}
            {%- endif -%}
            {%- do related.append({'pair': other, 'side': side, 'relation': entry['momentum'], 'sign': expected_sign}) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set term_windows = term_windows | map('int') | list -%}
    {%- if execute -%}
        {%- set have = adapter.get_columns_in_relation(source) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = [] -%}
        {%- for w in term_windows -%}
            {%- for stat in ['quadratic_term', 'linear_term', 'residual'] -%}
                {%- if ('w' ~ w ~ '_' ~ stat) not in have -%}{%- do missing.append('w' ~ w ~ '_' ~ stat) -%}{%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
        {%- if have | length > 0 and missing | length > 0 -%}
            {{ exceptions.raise_compiler_error(name ~ ": " ~ source ~ " lacks " ~ missing | join(', ')
                ~ ": every window of 'term_windows' (var term_cov_windows) must be one of the reg windows (var reg_windows)") }}
        {%- endif -%}
    {%- endif -%}
    {{ return(adapter.dispatch('bqx_correlations', 'bqx_warehouse')(
        source, momentum, related, term_windows, pair_windows | map('int') | list,
        return_column, incremental)) }}
{% endmacro %}


{% macro default__bqx_correlations(source, momentum, related, term_windows, pair_windows, return_column, incremental) %}
{%- set w_max = term_windows | max -%}
{%- set p_max = pair_windows | max -%}
{%- set pair_base = _merge_base(pair_windows) -%}
{%- set pair_levels = _merge_plan(pair_base, pair_windows) -%}
{%- set inc = _incremental_window(momentum, 'true', w_max - 1, return_column) if incremental else namespace(lower=none, after=none) -%}
{%- set terms = [('quad', 'quadratic_term'), ('lin', 'linear_term'), ('resid', 'residual')] -%}
{%- set products = [('quad_lin', 'quad', 'lin'), ('resid_quad', 'resid', 'quad'), ('resid_lin', 'resid', 'lin')] -%}
{%- set sides = ['base', 'quote'] -%}

with
{%- if inc.after is not none %}

read_bounds as (

    -- incremental: the first rows to read. Terms: the max(W) - 1 rows before the first
    -- new row (`_incremental_window`), numbered from the pair's first row (the blocks
    -- are anchored there). Related pairs: the last max(W) - 1 joined rows of the pair
    -- and each related pair before the first new row.
    select
        lower_terms,
        (select count(*) from {{ source }} where ts_utc < bounds.lower_terms) as rows_before,
        {%- for r in related %}
        coalesce((
            select min(lb.ts_utc) from (
                select p.ts_utc
                from {{ momentum }} as p
                inner join {{ r.relation }} as r on p.ts_utc = r.ts_utc
                where
                    p.{{ return_column }} is not null
                    and r.{{ return_column }} is not null
                    and p.ts_utc <= {{ inc.after }}
                order by p.ts_utc desc
                limit {{ p_max - 1 }}
            ) as lb
        ), {{ inc.after }}) as lower_{{ r.side }}_{{ r.pair }}{{ ',' if not loop.last }}
        {%- endfor %}
    from (select {{ inc.lower }} as lower_terms) as bounds

),
{%- endif %}

term_rows as (

    select
        ts_utc
        {%- for w in term_windows %}
        {%- for v, stat in terms %},
        w{{ w }}_{{ stat }}::double precision as {{ v }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from {{ source }}
    {%- if inc.after is not none %}
    where ts_utc >= (select lower_terms from read_bounds)
    {%- endif %}

),

pair_returns as (

    select
        ts_utc,
        {{ return_column }}::double precision as pair_return
    from {{ momentum }}
    {%- if inc.after is not none %}
    where ts_utc >= (
        select least(lower_terms{% for r in related %}, lower_{{ r.side }}_{{ r.pair }}{% endfor %})
        from read_bounds
    )
    {%- endif %}

),

related_returns as (

    -- each related pair's series s * return, s = +1 when the shared currency is on the
    -- same side in both pairs, else -1
    {%- for r in related %}
    select
        '{{ r.pair }}' as related_pair,
        '{{ r.side }}' as side,
        ts_utc,
        {{ '-' if r.sign < 0 }}{{ return_column }}::double precision as related_return
    from {{ r.relation }}
    where
        {{ return_column }} is not null
        {%- if inc.after is not none %}
        and ts_utc >= (select lower_{{ r.side }}_{{ r.pair }} from read_bounds)
        {%- endif %}
    {{ 'union all' if not loop.last }}
    {%- endfor %}

),

numbered_terms as (

    -- rn: the row's position in the pair's history (0-based, also when reading a lookback)
    select
        *,
        {{ '(select rows_before from read_bounds)' if inc.after is not none else '0' }} + row_number() over bars - 1 as rn
    from term_rows
    window bars as (order by ts_utc)

),

term_centres as (

    -- rows are cut into blocks of W rows (block k = rows [k W, (k + 1) W)); the window
    -- of W rows ending at t is the head of t's block up to t (its "prefix") plus the
    -- tail of the block before (its "suffix"). Each part is centred on one of its own
    -- values: the prefix on its block's first value, the suffix on its block's last.
    -- *_moved: 1 where the value differs from the row before (exact).
    select
        *
        {%- for w in term_windows %}
        {%- for v, stat in terms %},
        lag({{ v }}_{{ w }}, (rn % {{ w }})::int) over bars as {{ v }}_{{ w }}_head,
        lead({{ v }}_{{ w }}, ({{ w - 1 }} - rn % {{ w }})::int) over bars as {{ v }}_{{ w }}_tail,
        coalesce(({{ v }}_{{ w }} <> lag({{ v }}_{{ w }}) over bars)::int, 0) as {{ v }}_{{ w }}_moved
        {%- endfor %}
        {%- endfor %}
    from numbered_terms
    window bars as (order by rn)

),

prefix_sums as (

    -- per block, from its first row to t: sums of the values centred on the block's
    -- first value, of their squares and products; over all rows: counts of non-NULL
    -- rows and of value changes (integers: exact)
    select
        *
        {%- for w in term_windows %},
        count(quad_{{ w }}) over bars_running as n_{{ w }}
        {%- for v, stat in terms %},
        sum({{ v }}_{{ w }}_moved) over bars_running as moves_{{ v }}_{{ w }},
        sum({{ v }}_{{ w }} - {{ v }}_{{ w }}_head) over head_{{ w }} as a1_{{ v }}_{{ w }},
        sum(({{ v }}_{{ w }} - {{ v }}_{{ w }}_head) * ({{ v }}_{{ w }} - {{ v }}_{{ w }}_head)) over head_{{ w }} as a2_{{ v }}_{{ w }}
        {%- endfor %}
        {%- for p, x, y in products %},
        sum(({{ x }}_{{ w }} - {{ x }}_{{ w }}_head) * ({{ y }}_{{ w }} - {{ y }}_{{ w }}_head)) over head_{{ w }} as a2_{{ p }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from term_centres
    window
        bars_running as (order by rn rows unbounded preceding)
        {%- for w in term_windows %},
        head_{{ w }} as (partition by rn / {{ w }} order by rn rows unbounded preceding)
        {%- endfor %}

),

suffix_sums as (

    -- per block, from t to its last row: the same sums centred on the block's last value
    select
        *
        {%- for w in term_windows %}
        {%- for v, stat in terms %},
        sum({{ v }}_{{ w }} - {{ v }}_{{ w }}_tail) over tail_{{ w }} as b1_{{ v }}_{{ w }},
        sum(({{ v }}_{{ w }} - {{ v }}_{{ w }}_tail) * ({{ v }}_{{ w }} - {{ v }}_{{ w }}_tail)) over tail_{{ w }} as b2_{{ v }}_{{ w }}
        {%- endfor %}
        {%- for p, x, y in products %},
        sum(({{ x }}_{{ w }} - {{ x }}_{{ w }}_tail) * ({{ y }}_{{ w }} - {{ y }}_{{ w }}_tail)) over tail_{{ w }} as b2_{{ p }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from prefix_sums
    window
        {%- for w in term_windows %}
        tail_{{ w }} as (partition by rn / {{ w }} order by rn desc rows unbounded preceding){{ ',' if not loop.last }}
        {%- endfor %}

),

window_parts as (

    -- the suffix part of the window ending at t starts at t - W + 1: read it there
    -- (empty when t is the last row of its block: the prefix is the whole window)
    select
        ts_utc,
        rn
        {%- for w in term_windows %},
        n_{{ w }} - lag(n_{{ w }}, {{ w }}, 0::bigint) over bars as n_{{ w }},
        {{ w - 1 }} - rn % {{ w }} as nb_{{ w }}
        {%- for v, stat in terms %},
        moves_{{ v }}_{{ w }} - lag(moves_{{ v }}_{{ w }}, {{ w - 1 }}, 0::bigint) over bars as moves_{{ v }}_{{ w }},
        a1_{{ v }}_{{ w }},
        a2_{{ v }}_{{ w }},
        lag({{ v }}_{{ w }}_tail, {{ w - 1 }}) over bars - {{ v }}_{{ w }}_head as d_{{ v }}_{{ w }},
        lag(b1_{{ v }}_{{ w }}, {{ w - 1 }}) over bars as b1_{{ v }}_{{ w }},
        lag(b2_{{ v }}_{{ w }}, {{ w - 1 }}) over bars as b2_{{ v }}_{{ w }}
        {%- endfor %}
        {%- for p, x, y in products %},
        a2_{{ p }}_{{ w }},
        lag(b2_{{ p }}_{{ w }}, {{ w - 1 }}) over bars as b2_{{ p }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from suffix_sums
    window bars as (order by rn)

),

window_sums as (

    -- the window's sums, centred on the prefix's centre (a value inside the window):
    -- the suffix's sums are moved by d = (suffix centre - prefix centre)
    select
        ts_utc
        {%- for w in term_windows %},
        n_{{ w }} = {{ w }} as full_{{ w }}
        {%- for v, stat in terms %},
        moves_{{ v }}_{{ w }} = 0 as flat_{{ v }}_{{ w }},
        case when nb_{{ w }} = 0 then a1_{{ v }}_{{ w }}
            else a1_{{ v }}_{{ w }} + b1_{{ v }}_{{ w }} + nb_{{ w }} * d_{{ v }}_{{ w }}
        end as s1_{{ v }}_{{ w }},
        case when nb_{{ w }} = 0 then a2_{{ v }}_{{ w }}
            else a2_{{ v }}_{{ w }} + b2_{{ v }}_{{ w }} + 2 * d_{{ v }}_{{ w }} * b1_{{ v }}_{{ w }}
                + nb_{{ w }} * d_{{ v }}_{{ w }} * d_{{ v }}_{{ w }}
        end as s2_{{ v }}_{{ w }}
        {%- endfor %}
        {%- for p, x, y in products %},
        case when nb_{{ w }} = 0 then a2_{{ p }}_{{ w }}
            else a2_{{ p }}_{{ w }} + b2_{{ p }}_{{ w }} + d_{{ x }}_{{ w }} * b1_{{ y }}_{{ w }}
                + d_{{ y }}_{{ w }} * b1_{{ x }}_{{ w }} + nb_{{ w }} * d_{{ x }}_{{ w }} * d_{{ y }}_{{ w }}
        end as s2_{{ p }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from window_parts
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}

),

term_moments as (

    -- W (W - 1) times the variances and covariances
    select
        ts_utc
        {%- for w in term_windows %},
        full_{{ w }}
        {%- for v, stat in terms %},
        flat_{{ v }}_{{ w }},
        {{ w }} * s2_{{ v }}_{{ w }} - s1_{{ v }}_{{ w }} * s1_{{ v }}_{{ w }} as var_{{ v }}_{{ w }}
        {%- endfor %}
        {%- for p, x, y in products %},
        {{ w }} * s2_{{ p }}_{{ w }} - s1_{{ x }}_{{ w }} * s1_{{ y }}_{{ w }} as cov_{{ p }}_{{ w }}
        {%- endfor %}
        {%- endfor %}
    from window_sums

),

term_covariances as (

    -- a series that does not change over the window has covariance exactly 0 and no
    -- correlation; correlations are clamped to [-1, 1] against rounding
    select
        ts_utc
        {%- for w in term_windows %}
        {%- for p, x, y in products %},
        case
            when not full_{{ w }} then null
            when flat_{{ x }}_{{ w }} or flat_{{ y }}_{{ w }} then 0.0
            else cov_{{ p }}_{{ w }} / {{ w * (w - 1) }}.0
        end as cov_{{ p }}_bqx_{{ w }}min
        {%- endfor %}
        {%- for p, x, y in products %},
        case
            when
                full_{{ w }} and not flat_{{ x }}_{{ w }} and not flat_{{ y }}_{{ w }}
                and var_{{ x }}_{{ w }} > 0 and var_{{ y }}_{{ w }} > 0
                then least(greatest(cov_{{ p }}_{{ w }} / (sqrt(var_{{ x }}_{{ w }}) * sqrt(var_{{ y }}_{{ w }})), -1.0), 1.0)
        end as corr_{{ p }}_bqx_{{ w }}min
        {%- endfor %}
        {%- endfor %}
    from term_moments

),

joined_returns as (

    -- the joined rows of the pair and each related pair: timestamps where both have
    -- a return (joined on ts_utc, never by position)
    select
        r.related_pair,
        r.side,
        r.ts_utc,
        p.pair_return,
        r.related_return
    from related_returns as r
    inner join pair_returns as p on r.ts_utc = p.ts_utc
    where p.pair_return is not null

),

joined_deviations as (

    -- per related pair, in joined-row order: the base block's values as deviations
    -- from the newest row, and 1 where a series differs from the joined row before
    select
        *,
        row_number() over joined as joined_rn,
        coalesce((pair_return <> lag(pair_return) over joined)::int, 0) as pair_moved,
        coalesce((related_return <> lag(related_return) over joined)::int, 0) as related_moved
        {%- for j in range(1, pair_base) %},
        lag(pair_return, {{ j }}) over joined - pair_return as dp_{{ j }},
        lag(related_return, {{ j }}) over joined - related_return as dr_{{ j }}
        {%- endfor %}
    from joined_returns
    window joined as (partition by related_pair order by ts_utc)

),

{%- set dps = [] %}{% set drs = [] %}
{%- for j in range(1, pair_base) %}{% do dps.append('dp_' ~ j) %}{% do drs.append('dr_' ~ j) %}{% endfor %}

pair_blocks_0 as (

    -- base blocks of {{ pair_base }} joined rows ending at t: means relative to the newest
    -- row (mp, mr) and co-moments C = sum of products of deviations from the mean;
    -- running counts of value changes (integers: exact)
    select
        related_pair,
        side,
        ts_utc,
        pair_return as p,
        related_return as r,
        joined_rn,
        sum(pair_moved) over joined_running as pair_moves,
        sum(related_moved) over joined_running as related_moves,
        {%- if pair_base == 1 %}
        0::double precision as mp_1,
        0::double precision as mr_1,
        0::double precision as cpp_1,
        0::double precision as crr_1,
        0::double precision as cpr_1
        {%- else %}
        ({{ dps | join(' + ') }}) / {{ pair_base }}.0 as mp_{{ pair_base }},
        ({{ drs | join(' + ') }}) / {{ pair_base }}.0 as mr_{{ pair_base }},
        {% for d in dps %}{{ d }} * {{ d }}{{ ' + ' if not loop.last }}{% endfor %}
            - ({{ dps | join(' + ') }}) ^ 2 / {{ pair_base }}.0 as cpp_{{ pair_base }},
        {% for d in drs %}{{ d }} * {{ d }}{{ ' + ' if not loop.last }}{% endfor %}
            - ({{ drs | join(' + ') }}) ^ 2 / {{ pair_base }}.0 as crr_{{ pair_base }},
        {% for j in range(1, pair_base) %}dp_{{ j }} * dr_{{ j }}{{ ' + ' if not loop.last }}{% endfor %}
            - ({{ dps | join(' + ') }}) * ({{ drs | join(' + ') }}) / {{ pair_base }}.0 as cpr_{{ pair_base }}
        {%- endif %}
    from joined_deviations
    window joined_running as (partition by related_pair order by ts_utc rows unbounded preceding)

)
{%- for level in pair_levels %}
{%- set lvl = loop.index %},

pair_lags_{{ lvl }} as (

    select
        *
        {%- for m in level %}
        {%- set n, a, b = m[0], m[1], m[2] %},
        lag(p, {{ b }}) over joined as p_back_{{ n }},
        lag(r, {{ b }}) over joined as r_back_{{ n }}
        {%- for stat in ['mp', 'mr', 'cpp', 'crr', 'cpr'] %},
        lag({{ stat }}_{{ a }}, {{ b }}) over joined as old_{{ n }}_{{ stat }}
        {%- endfor %}
        {%- endfor %}
    from pair_blocks_{{ lvl - 1 }}
    window joined as (partition by related_pair order by ts_utc)

),

pair_deltas_{{ lvl }} as (

    -- block of a + b joined rows ending at t = block of a rows ending at t - b (old_)
    -- merged with block of b rows ending at t: delta = difference of their means
    select
        *
        {%- for m in level %}
        {%- set n, a, b = m[0], m[1], m[2] %},
        (p - p_back_{{ n }}) + (mp_{{ b }} - old_{{ n }}_mp) as delta_p_{{ n }},
        (r - r_back_{{ n }}) + (mr_{{ b }} - old_{{ n }}_mr) as delta_r_{{ n }}
        {%- endfor %}
    from pair_lags_{{ lvl }}

),

pair_blocks_{{ lvl }} as (

    select
        *
        {%- for m in level %}
        {%- set n, a, b = m[0], m[1], m[2] %},
        mp_{{ b }} - {{ a / n }} * delta_p_{{ n }} as mp_{{ n }},
        mr_{{ b }} - {{ a / n }} * delta_r_{{ n }} as mr_{{ n }},
        old_{{ n }}_cpp + cpp_{{ b }} + delta_p_{{ n }} * delta_p_{{ n }} * {{ a * b / n }} as cpp_{{ n }},
        old_{{ n }}_crr + crr_{{ b }} + delta_r_{{ n }} * delta_r_{{ n }} * {{ a * b / n }} as crr_{{ n }},
        old_{{ n }}_cpr + cpr_{{ b }} + delta_p_{{ n }} * delta_r_{{ n }} * {{ a * b / n }} as cpr_{{ n }}
        {%- endfor %}
    from pair_deltas_{{ lvl }}

)
{%- endfor %},

checked_correlations as (

    -- keep a correlation only with W joined rows and neither series constant over them
    select
        related_pair,
        side,
        ts_utc,
        r as related_return
        {%- for w in pair_windows %},
        case
            when
                joined_rn >= {{ w }}
                and pair_moves - lag(pair_moves, {{ w - 1 }}, 0::bigint) over joined > 0
                and related_moves - lag(related_moves, {{ w - 1 }}, 0::bigint) over joined > 0
                and cpp_{{ w }} > 0 and crr_{{ w }} > 0
                then least(greatest(cpr_{{ w }} / (sqrt(cpp_{{ w }}) * sqrt(crr_{{ w }})), -1.0), 1.0)
        end as corr_{{ w }}
        {%- endfor %}
    from pair_blocks_{{ pair_levels | length }}
    window joined as (partition by related_pair order by ts_utc)

),

cross_pair as (

    -- means over the related pairs that have a bar at t
    select
        ts_utc
        {%- for w in pair_windows %}
        {%- for side in sides %},
        avg(corr_{{ w }}) filter (where side = '{{ side }}') as corr_{{ side }}_pairs_{{ w }}min
        {%- endfor %}
        {%- endfor %}
        {%- for side in sides %},
        avg(related_return) filter (where side = '{{ side }}') as related_mean_{{ side }}
        {%- endfor %}
    from checked_correlations
    {%- if inc.after is not none %}
    where ts_utc > {{ inc.after }}
    {%- endif %}
    group by ts_utc

),

final as (

    select
        t.ts_utc,
        p.pair_return as {{ return_column }}
        {%- for w in term_windows %}
        {%- for p_, x, y in products %},
        t.cov_{{ p_ }}_bqx_{{ w }}min
        {%- endfor %}
        {%- for p_, x, y in products %},
        t.corr_{{ p_ }}_bqx_{{ w }}min
        {%- endfor %}
        {%- endfor %}
        {%- for w in pair_windows %}
        {%- for side in sides %},
        c.corr_{{ side }}_pairs_{{ w }}min
        {%- endfor %}
        {%- endfor %}
        {%- for side in sides %},
        p.pair_return - c.related_mean_{{ side }} as rel_strength_{{ side }}
        {%- endfor %}
    from term_covariances as t
    left join pair_returns as p on t.ts_utc = p.ts_utc
    left join cross_pair as c on t.ts_utc = c.ts_utc

)

select * from final
{% endmacro %}
