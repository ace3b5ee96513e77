{#
    Keep one row per `partition_by`, the first in `order_by` order, with the
    relation's own columns (no helper column leaks into the result).
    Dispatched: Postgres uses DISTINCT ON; the default uses QUALIFY, which
    Snowflake, BigQuery, Databricks, DuckDB, Redshift and ClickHouse support.
#}
{% macro deduplicate(relation, partition_by, order_by) -%}
    {{ return(adapter.dispatch('deduplicate')(relation, partition_by, order_by)) }}
{%- endmacro %}

{% macro default__deduplicate(relation, partition_by, order_by) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ partition_by }}
        order by {{ order_by }}
    ) = 1
{%- endmacro %}

{% macro postgres__deduplicate(relation, partition_by, order_by) -%}
    select distinct on ({{ partition_by }}) *
    from {{ relation }}
    order by {{ partition_by }}, {{ order_by }}
{%- endmacro %}
