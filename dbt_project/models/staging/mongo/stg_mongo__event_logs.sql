{{
    config(
        materialized='incremental',
        unique_key='event_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- Retrying clients re-send events under a new _id: the first copy written wins.

with

source as (
    select * from {{ source('mongo', 'event_logs') }}
    {{ incremental_since() }}
),

first_copy as (
    {{ deduplicate('source', "doc ->> 'event_id'", '_source_updated_at, _id') }}
),

renamed as (
    select
        ---------- ids
        doc ->> 'event_id' as event_id,
        (doc -> 'details' ->> 'user_id')::bigint as user_id,
        doc -> 'details' ->> 'session_id' as session_id,
        _id as document_id,

        ---------- strings
        doc ->> 'event_type' as event_type,
        doc -> 'details' ->> 'page' as page,

        ---------- numerics
        (doc -> 'details' ->> 'code')::integer as error_code,

        ---------- json
        doc -> 'details' as details,

        ---------- timestamps
        (doc ->> 'timestamp')::timestamptz as event_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _batch_id as batch_id

    from first_copy
)

select * from renamed
