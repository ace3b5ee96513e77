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

{#
    The same filter for a snapshot of such a model (check strategy, hard
    deletes ignored): only rows of batches newer than the newest batch the
    snapshot holds, so a day's run compares the day's changes, not every
    current row. Sound because a key missing from the query is left as it is
    when hard deletes are ignored, and a version is only ever written from a
    batch the snapshot has read. A batch whose rows change nothing adds no
    version, so it may be read again next run: harmless. Renders nothing
    until the snapshot's table exists (its first run reads everything).
#}
{% macro snapshot_since(column='batch_id') -%}
    {%- if execute -%}
        {%- if adapter.get_hard_deletes_behavior(config) != 'ignore' -%}
            {{ exceptions.raise_compiler_error(
                model.name ~ ": snapshot_since needs hard_deletes: ignore (a key missing "
                ~ "from a filtered query would read as deleted)") }}
        {%- endif -%}
        {%- if adapter.get_relation(this.database, this.schema, this.identifier) is not none %}
    where {{ column }} > (select coalesce(max({{ column }}), 0) from {{ this }})
        {%- endif -%}
    {%- endif %}
{%- endmacro %}
