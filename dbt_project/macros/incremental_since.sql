{#
    The filter for an incremental model reading append-only raw rows: only rows
    from loader batches newer than the newest batch already in the target.

    Batch ids (loader.batches) are allocated when a batch starts, and the loader
    holds a per-stream lock while it loads, so within one stream batch ids
    commit in increasing order: a batch still in flight while dbt reads is
    newer than every batch dbt saw, and is picked up next time. No time-based
    lookback is needed. On a full build this renders nothing.
#}
{% macro incremental_since(source_column='_batch_id', target_column='batch_id') -%}
    {%- if is_incremental() %}
    where {{ source_column }} > (
        select coalesce(max({{ target_column }}), 0) from {{ this }}
    )
    {%- endif %}
{%- endmacro %}
