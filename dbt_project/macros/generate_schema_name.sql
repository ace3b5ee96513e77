{#
    Custom schemas are used as named (staging, intermediate, marts, snapshots),
    so the warehouse reads like the project. Set DBT_SCHEMA_PREFIX (for example
    in CI or a personal dev target) to keep several builds apart in one database.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set prefix = env_var('DBT_SCHEMA_PREFIX', '') -%}
    {%- set name = custom_schema_name | trim if custom_schema_name else target.schema -%}
    {{ prefix ~ name }}
{%- endmacro %}
