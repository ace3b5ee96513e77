{#
    The order system's row versions, as its loader lands them: by change
    capture (a logical replication slot: every insert, update, delete and
    truncate, in commit order) or by keyset (by write time; its rows have no
    change columns). The app database's staging models use the tombstone
    macros too: reconciliation lands a deleted document as one (_op d).
#}

{# The change columns a staging model keeps: the kind of change, and its place in commit order. #}
{% macro change_columns() -%}
    _op as change_op,
        coalesce(_lsn, '0/0'::pg_lsn) as change_lsn,
        coalesce(_seq, 0) as change_seq
{%- endmacro %}

{# A version that says its key is gone: a delete, or a truncate of its table. #}
{% macro is_tombstone(op='change_op') -%}
    coalesce({{ op }} in ('d', 't'), false)
{%- endmacro %}

{#
    How a key's versions rank, latest last: commit order (the commit's LSN,
    then the change's place in its transaction; a keyset read carries the
    source's WAL position when it began, so reads and commits share one
    order), then the write time and the batch (versions of one read).
#}
{% macro version_order() -%}
    {{ return(['change_lsn', 'change_seq', 'updated_at', 'batch_id']) }}
{%- endmacro %}

{#
    The last select of an order-system staging model: each key's latest
    version, without the keys whose latest version is a tombstone. On an
    incremental run the tombstones stay in (the delete+insert then removes
    their keys' kept rows) and drop_deleted_keys deletes them after.
#}
{% macro without_deleted_keys(relation) -%}
    select * from {{ relation }}
    {%- if not is_incremental() %}
    where not {{ is_tombstone() }}
    {%- endif %}
{%- endmacro %}

{#
    Pre-hook of the order system's staging models: an incremental model built
    before change capture gets its change columns first, its rows reading as
    keyset versions (0/0, 0), so the deduplication can rank them against the
    new batch. Looked up first: ALTER TABLE locks the table even when the
    columns exist.
#}
{% macro add_change_columns() -%}
    {%- if execute and is_incremental() -%}
        {%- set present = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if 'change_lsn' not in present -%}
            alter table {{ this }}
            add column if not exists change_op text,
            add column if not exists change_lsn pg_lsn not null default '0/0',
            add column if not exists change_seq integer not null default 0
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{# Post-hook of the order system's and the app's staging models: see without_deleted_keys. #}
{% macro drop_deleted_keys() -%}
    {%- if model.config.materialized == 'incremental' and 'change_op' in model.columns -%}
        delete from {{ this }} where {{ is_tombstone() }}
    {%- endif -%}
{%- endmacro %}

{#
    Post-hook of a snapshot of an order-system staging model: the current
    version of a key gone from staging (deleted at the source, or its latest
    version quarantined) is closed, valid until now, as dbt's hard_deletes:
    invalidate does. That option cannot serve here: the snapshot reads only
    new batches (snapshot_since), so a key it does not read is not a deleted
    key. The check reads the kept keys whole: a hash anti-join, about a
    millisecond per ten thousand keys.
#}
{% macro close_deleted_versions(unique_key, staging_model) -%}
    update {{ this }} as snap
    set dbt_valid_to = {{ snapshot_get_time() }}
    where
        snap.dbt_valid_to is null
        and not exists (
            select from (select {{ unique_key }} from {{ ref(staging_model) }}) as kept
            where kept.{{ unique_key }} = snap.{{ unique_key }}
        )
{%- endmacro %}
