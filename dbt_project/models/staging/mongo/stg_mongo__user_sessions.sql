{{
    config(
        materialized='incremental',
        unique_key='session_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

source as (
    select * from {{ source('mongo', 'user_sessions') }}
    {{ incremental_since() }}
),

latest as (
    {{ deduplicate('source', "doc ->> 'session_id'",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        doc ->> 'session_id' as session_id,
        (doc ->> 'user_id')::bigint as user_id,
        _id as document_id,

        ---------- device
        doc -> 'device' ->> 'type' as device_type,
        doc -> 'device' ->> 'os' as device_os,
        doc -> 'device' ->> 'browser' as device_browser,

        ---------- numerics
        jsonb_array_length(doc -> 'pages_visited') as pages_visited_count,
        jsonb_array_length(doc -> 'actions') as actions_count,

        ---------- arrays
        doc -> 'pages_visited' as pages_visited,
        doc -> 'actions' as actions,

        ---------- timestamps
        (doc ->> 'start_time')::timestamptz as started_at,
        (doc ->> 'end_time')::timestamptz as ended_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _batch_id as batch_id

    from latest
)

select * from renamed
