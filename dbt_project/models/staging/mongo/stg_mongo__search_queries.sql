{{
    config(
        materialized='incremental',
        unique_key='query_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

source as (
    select * from {{ source('mongo', 'search_queries') }}
    {{ incremental_since() }}
),

latest as (
    {{ deduplicate('source', "doc ->> 'query_id'",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        doc ->> 'query_id' as query_id,
        (doc ->> 'user_id')::bigint as user_id,
        _id as document_id,

        ---------- strings
        doc ->> 'query_text' as query_text,

        ---------- numerics
        (doc ->> 'results_count')::integer as results_count,
        jsonb_array_length(doc -> 'filters') as filters_count,

        ---------- arrays
        doc -> 'filters' as filters,

        ---------- timestamps
        (doc ->> 'timestamp')::timestamptz as searched_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _batch_id as batch_id

    from latest
)

select * from renamed
