with

source as (
    select * from {{ source('mongo', 'moderation_queue') }}
),

latest as (
    {{ deduplicate('source', "doc ->> 'review_id'",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        doc ->> 'review_id' as review_id,
        (doc ->> 'user_id')::bigint as user_id,
        (doc ->> 'product_id')::bigint as product_id,
        _id as document_id,

        ---------- strings
        doc ->> 'review_text' as review_text,
        doc ->> 'moderation_status' as moderation_status,

        ---------- numerics
        (doc ->> 'rating')::integer as rating,
        coalesce(jsonb_array_length(doc -> 'flags'), 0) as flags_count,

        ---------- arrays
        doc -> 'flags' as flags,

        ---------- timestamps
        (doc ->> 'submitted_at')::timestamptz as submitted_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at

    from latest
)

select * from renamed
