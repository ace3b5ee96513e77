{{ config(materialized='incremental', unique_key='query_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per site search: its latest landed version, also when a later batch
-- brings an older one (see stg_mongo__user_sessions).

with

source as (
    select * from {{ source('mongo', 'search_queries') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'query_id') }} as query_id,
        {{ json_value('doc', 'user_id', 'bigint') }} as user_id,
        _id as document_id,

        ---------- strings
        {{ json_value('doc', 'query_text') }} as query_text,

        ---------- numerics
        {{ json_value('doc', 'results_count', 'integer') }} as results_count,
        {{ json_array_length('doc', 'filters') }} as filters_count,

        ---------- arrays
        {{ json_array('doc', 'filters') }} as filters,

        ---------- timestamps
        {{ json_value('doc', 'timestamp', 'timestamptz') }} as searched_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'query_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
