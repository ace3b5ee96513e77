-- Latest version of every review in the moderation queue.

with

source as (
    select * from {{ source('mongo', 'moderation_queue') }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'review_id') }} as review_id,
        {{ json_value('doc', 'user_id', 'bigint') }} as user_id,
        {{ json_value('doc', 'product_id', 'bigint') }} as product_id,
        _id as document_id,

        ---------- strings
        {{ json_value('doc', 'review_text') }} as review_text,
        {{ json_value('doc', 'moderation_status') }} as moderation_status,

        ---------- numerics
        {{ json_value('doc', 'rating', 'integer') }} as rating,
        coalesce({{ json_array_length('doc', 'flags') }}, 0) as flags_count,

        ---------- arrays
        {{ json_array('doc', 'flags') }} as flags,

        ---------- timestamps
        {{ json_value('doc', 'submitted_at', 'timestamptz') }} as submitted_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'review_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
