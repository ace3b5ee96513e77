{#
    on-run-start: every schema the project writes to (models, snapshots,
    stored test failures), and the quarantine's table (quarantine.sql),
    created one invocation at a time.

    Airflow's transform tasks are dbt invocations running side by side; on a
    new warehouse several of them create the same schema at once, and
    PostgreSQL's `create schema if not exists` is not safe against that (one
    of them fails on pg_namespace's unique index). Here they queue on an
    advisory lock (the creates commit before it is released), so dbt's own
    creates find the schemas there. Other
    adapters: nothing (dbt creates what it needs).
#}
{% macro create_schemas_serially() -%}
    {%- if execute and target.type == 'postgres' -%}
        {%- set schemas = [] -%}
        {%- set kinds = ('model', 'snapshot', 'seed', 'test') -%}
        {%- for node in graph.nodes.values() if node.resource_type in kinds -%}
            {%- if node.config.enabled and node.schema not in schemas -%}
                {%- do schemas.append(node.schema) -%}
            {%- endif -%}
        {%- endfor -%}
        select pg_advisory_lock(hashtext('store_analytics: create schemas'));
        {% for schema in schemas | sort %}
        create schema if not exists {{ adapter.quote(schema) }};
        {% endfor %}
        {{ create_quarantine_relation() }}
        {#- Commit before the unlock: dbt runs hooks in a transaction it never
            commits itself, and the next invocation must see these objects. #}
        commit;
        select pg_advisory_unlock(hashtext('store_analytics: create schemas'));
    {%- endif -%}
{%- endmacro %}
