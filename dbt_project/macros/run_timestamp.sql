{# The dbt invocation's start time as a timestamptz literal: one value per run. #}
{% macro run_timestamp() -%}
    '{{ run_started_at.isoformat() }}'::timestamptz
{%- endmacro %}
