{#-
    Plan of block merges shared by the momentum and regression macros.

    Every window of `windows` bars is built from a base block of `base` bars by
    two-way merges: a block of L = a + b bars ending at t is the block of a bars
    ending at t - b merged with the block of b bars ending at t. Each merge reads
    the older block with one lag() per statistic, so a whole plan costs O(rows) per
    merge, with a number of merges that grows with log2 of the window lengths (not
    with the lengths), and every statistic only ever sees the rows of its own block
    (no running sum over the history).

    Returns a list of levels; each level is a list of [L, a, b, level] merges. Each
    level costs one window pass (the lag()s of its older blocks) and a projection.
    Without `chained`, every merge of a level takes both inputs from earlier levels.
    With `chained=true`, a merge may also take its newer block from an earlier merge of
    the same level (listed before it), because only the older block is read through
    lag(): for 60, 90, 150, 240, 390, 630 this needs 4 window passes instead of 7.
    `max_chain` (with `chained`) bounds how many merges of one level may feed each
    other in a row: with 1, a newer block made in the same level was itself made from
    earlier levels only, so a caller can write it inline instead of materialising it.
-#}
{% macro _merge_plan(base, windows, chained=false, max_chain=none) %}
    {%- set ns = namespace(avail={base: 0}, chain={base: 0}, merges=[], chained=chained, max_chain=max_chain) -%}
    {%- for w in windows | sort -%}
        {%- do _merge_plan_make(ns, base, w) -%}
    {%- endfor -%}
    {%- set depth = ns.avail.values() | max -%}
    {%- set levels = [] -%}
    {%- for lvl in range(1, depth + 1) -%}
        {%- do levels.append(ns.merges | selectattr(3, 'equalto', lvl) | list) -%}
    {%- endfor -%}
    {{- return(levels) -}}
{% endmacro %}

{% macro _merge_plan_make(ns, base, length) %}
    {%- if length not in ns.avail -%}
        {#- prefer a pair of blocks that already exist, the shallowest, then the most balanced -#}
        {%- set best = namespace(a=none, key=none) -%}
        {%- for a in ns.avail.keys() | sort -%}
            {%- if a < length and (length - a) in ns.avail -%}
                {%- set key = [_merge_level(ns, a, length - a), (length - 2 * a) | abs] -%}
                {%- if best.key is none or key < best.key -%}
                    {%- set best.a = a -%}
                    {%- set best.key = key -%}
                {%- endif -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if best.a is none -%}
            {#- split in two (multiples of base), build both halves first -#}
            {%- set half = ((length // base) // 2) * base -%}
            {%- do _merge_plan_make(ns, base, half) -%}
            {%- do _merge_plan_make(ns, base, length - half) -%}
            {%- set best.a = half -%}
        {%- endif -%}
        {%- set a = best.a -%}
        {%- set b = length - a -%}
        {%- set lvl = _merge_level(ns, a, b) -%}
        {%- do ns.avail.update({length: lvl}) -%}
        {%- do ns.chain.update({length: ns.chain[b] + 1 if lvl == ns.avail[b] else 0}) -%}
        {%- do ns.merges.append([length, a, b, lvl]) -%}
    {%- endif -%}
{% endmacro %}

{#- The level of the merge of older block a (read through lag) and newer block b. -#}
{% macro _merge_level(ns, a, b) %}
    {%- if ns.chained -%}
        {%- set lvl = [ns.avail[a] + 1, ns.avail[b]] | max -%}
        {%- if ns.max_chain is not none and lvl == ns.avail[b] and ns.chain[b] + 1 > ns.max_chain -%}
            {%- set lvl = lvl + 1 -%}
        {%- endif -%}
        {{- return(lvl) -}}
    {%- else -%}
        {{- return([ns.avail[a], ns.avail[b]] | max + 1) -}}
    {%- endif -%}
{% endmacro %}

{#- The base block: the largest divisor of the windows' gcd that is at most 16 bars. -#}
{% macro _merge_base(windows) %}
    {%- set ns = namespace(g=0) -%}
    {%- for w in windows -%}
        {%- set ns2 = namespace(a=ns.g, b=w) -%}
        {%- for _ in range(64) if ns2.b != 0 -%}
            {%- set t = ns2.a % ns2.b -%}
            {%- set ns2.a = ns2.b -%}
            {%- set ns2.b = t -%}
        {%- endfor -%}
        {%- set ns.g = ns2.a -%}
    {%- endfor -%}
    {%- set ns3 = namespace(base=1) -%}
    {%- for d in range(1, 17) if ns.g % d == 0 -%}
        {%- set ns3.base = d -%}
    {%- endfor -%}
    {{- return(ns3.base) -}}
{% endmacro %}


{#- Block lengths that level `lvl` must carry forward: those merged at a later level or output. -#}
{% macro _merge_carried(levels, lvl, windows, base) %}
    {%- set present = [base] -%}
    {%- for level in levels[:lvl - 1] -%}
        {%- for m in level -%}{%- do present.append(m[0]) -%}{%- endfor -%}
    {%- endfor -%}
    {%- set needed = windows | list -%}
    {%- for level in levels[lvl:] -%}
        {%- for m in level -%}
            {%- do needed.append(m[1]) -%}
            {%- do needed.append(m[2]) -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set out = [] -%}
    {%- for length in present | unique | sort if length in needed -%}
        {%- do out.append(length) -%}
    {%- endfor -%}
    {{- return(out) -}}
{% endmacro %}


{#-
    The window passes of a chained plan (`_merge_plan(..., chained=true, max_chain=1)`),
    as CTEs pass_1, blocks_1, ... reading blocks_0, each block carried as the columns
    <stat>_<length> for every stat in `stats`. `keep` lists the columns every CTE
    carries unchanged (ts_utc first); `merge(m, old)` is the caller's macro writing the
    merged block m = [n, a, b] from `old` (SQL for the older block's stats) and the
    newer block's columns. Emits ",\n\npass_1 as (...),\n\nblocks_1 as (...)" and so on.
-#}
{% macro _merge_passes(levels, windows, base, stats, merge, keep) %}
{%- for level in levels %},
{%- set lvl = loop.index %}
{%- set carried = _merge_carried(levels, lvl, windows, base) %}
{%- set in_pass = [] %}
{%- set chained = [] %}
{%- for m in level %}{% do (chained if m[2] in in_pass else in_pass).append(m[0]) %}{% endfor %}

pass_{{ lvl }} as (

    -- one window pass: the lag()s of the older blocks and the merges whose newer block
    -- is already a column, in one WindowAgg node (identical lag() calls run once)
    select
        {{ keep | join(',\n        ') }}
        {%- for length in carried %},
        {% for stat in stats %}{{ stat }}_{{ length }}{{ ', ' if not loop.last }}{% endfor %}
        {%- endfor %}
        {%- for m in level %}
        {%- set old = {} %}
        {%- for stat in stats %}
        {%- do old.update({stat: 'lag(' ~ stat ~ '_' ~ m[1] ~ ', ' ~ m[2] ~ ') over bars'}) %}
        {%- endfor %}
        {%- if m[0] in chained %}
        {%- for stat in stats %},
        {{ old[stat] }} as old_{{ m[0] }}_{{ stat }}
        {%- endfor %}
        {%- else %},
        {{ merge(m, old) }}
        {%- endif %}
        {%- endfor %}
    from blocks_{{ lvl - 1 }}
    window bars as (order by ts_utc)

),

blocks_{{ lvl }} as (

    select
        {{ keep | join(',\n        ') }}
        {%- for length in carried + in_pass %},
        {% for stat in stats %}{{ stat }}_{{ length }}{{ ', ' if not loop.last }}{% endfor %}
        {%- endfor %}
        {%- for m in level if m[0] in chained %}
        {%- set old = {} %}
        {%- for stat in stats %}{% do old.update({stat: 'old_' ~ m[0] ~ '_' ~ stat}) %}{% endfor %},
        {{ merge(m, old) }}
        {%- endfor %}
    from pass_{{ lvl }}
    {%- if chained %}
    {#- merges whose newer block was made in this pass; evaluated once (the next pass's
        lag()s read these columns), in order (no re-sort) #}
    order by ts_utc
    offset 0
    {%- endif %}

)
{%- endfor %}
{%- endmacro %}
