-- Latest recommendations for each user.

with

source as (
    select * from {{ source('mongo', 'user_recommendations') }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'user_id', 'bigint') }} as user_id,
        _id as document_id,

        ---------- numerics
        {{ json_array_length('doc', 'recommended_products') }} as recommended_products_count,

        ---------- arrays
        {{ json_array('doc', 'recommended_products') }} as recommended_products,

        ---------- timestamps
        {{ json_value('doc', 'last_updated', 'timestamptz') }} as last_updated_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'user_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
