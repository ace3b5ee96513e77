{#
    Custom schemas are used as named (staging, intermediate, marts, snapshots),
    so the warehouse reads like the project. The targets differ in what goes
    before them (profiles/profiles.yml): prod nothing, ever; ci DBT_SCHEMA_PREFIX
    or "ci_"; dev (and clickhouse) DBT_SCHEMA_PREFIX, empty by default. config's
    DbtSettings.schema_prefix is the same rule for the Python side.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if target.name == 'prod' -%}
        {%- set prefix = '' -%}
    {%- elif target.name == 'ci' -%}
        {%- set prefix = env_var('DBT_SCHEMA_PREFIX', '') or 'ci_' -%}
    {%- else -%}
        {%- set prefix = env_var('DBT_SCHEMA_PREFIX', '') -%}
    {%- endif -%}
    {%- set name = custom_schema_name | trim if custom_schema_name else target.schema -%}
    {{ prefix ~ name }}
{%- endmacro %}
