{{ config(materialized='incremental', unique_key='session_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per session: its latest landed version. Offline clients sync late,
-- and the loader re-reads a lookback window, so a batch can bring a version
-- older than the one already kept: deduplicate_incremental keeps the version
-- a full refresh would keep.

with

source as (
    select * from {{ source('mongo', 'user_sessions') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'session_id') }} as session_id,
        {{ json_value('doc', 'user_id', 'bigint') }} as user_id,
        _id as document_id,

        ---------- device
        {{ json_value('doc', 'device.type') }} as device_type,
        {{ json_value('doc', 'device.os') }} as device_os,
        {{ json_value('doc', 'device.browser') }} as device_browser,

        ---------- numerics
        {{ json_array_length('doc', 'pages_visited') }} as pages_visited_count,
        {{ json_array_length('doc', 'actions') }} as actions_count,

        ---------- arrays
        {{ json_array('doc', 'pages_visited') }} as pages_visited,
        {{ json_array('doc', 'actions') }} as actions,

        ---------- timestamps
        {{ json_value('doc', 'start_time', 'timestamptz') }} as started_at,
        {{ json_value('doc', 'end_time', 'timestamptz') }} as ended_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'session_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
