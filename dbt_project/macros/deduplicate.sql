{#
    Keep one row per `partition_by`, the first in `order_by` order.
    Portable window-function form (no Postgres-only DISTINCT ON), so the same
    staging code can run on other adapters.
#}
{% macro deduplicate(relation, partition_by, order_by) -%}
    select *
    from (
        select
            *,
            row_number() over (
                partition by {{ partition_by }}
                order by {{ order_by }}
            ) as dedup_row_number
        from {{ relation }}
    ) as ranked
    where dedup_row_number = 1
{%- endmacro %}
