{#-
    _require_built(): for a singular test that compares several families, stop with
    one clear message when a table it reads was never built (instead of PostgreSQL's
    "relation does not exist"), e.g. after `--select reg_rate+` on a database where
    reg_bqx was never built. Reads the test's own dependencies; the relation cache
    already holds what this run built before the test.
-#}
{% macro _require_built() %}
    {%- if execute -%}
        {%- set missing = [] -%}
        {%- for node_id in model.depends_on.nodes -%}
            {%- set node = graph.nodes[node_id] -%}
            {%- if adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) is none -%}
                {%- do missing.append(node.name) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- if missing -%}
            {{- exceptions.raise_compiler_error(
                model.name ~ " reads " ~ (missing | length) ~ " table(s) that are not built: "
                ~ (missing[:4] | join(', ')) ~ (' and ' ~ (missing | length - 4) ~ ' more' if missing | length > 4 else '')
                ~ ". Build them first (`bqx dbt -- build` builds everything), or leave this test out"
                ~ " with --exclude " ~ model.name ~ ".") -}}
        {%- endif -%}
    {%- endif -%}
{% endmacro %}
