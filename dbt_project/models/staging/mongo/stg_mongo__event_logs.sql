{{ config(materialized='incremental', unique_key='event_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per app event. Retrying clients re-send events under a new _id:
-- the first copy written wins (by write time, then _id), also when a copy
-- lands in a later batch than one already kept.

with

source as (
    select * from {{ source('mongo', 'event_logs') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'event_id') }} as event_id,
        {{ json_value('doc', 'details.user_id', 'bigint') }} as user_id,
        {{ json_value('doc', 'details.session_id') }} as session_id,
        _id as document_id,

        ---------- strings
        {{ json_value('doc', 'event_type') }} as event_type,
        {{ json_value('doc', 'details.page') }} as page,

        ---------- numerics
        {{ json_value('doc', 'details.code', 'integer') }} as error_code,

        ---------- json
        {{ json_object('doc', 'details') }} as details,

        ---------- timestamps
        {{ json_value('doc', 'timestamp', 'timestamptz') }} as event_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _batch_id as batch_id

    from source
    -- An event deleted at the source still happened: its tombstone is no event.
    where _op is null
),

first_copy as (
    {{ deduplicate_incremental('renamed', 'event_id',
                               ['updated_at', 'document_id', 'loaded_at', 'batch_id'],
                               keep='first') }}
)

select * from first_copy
