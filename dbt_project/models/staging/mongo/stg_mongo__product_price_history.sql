-- Latest version of each product's price history document.

with

source as (
    select * from {{ source('mongo', 'product_price_history') }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'product_id', 'bigint') }} as product_id,
        _id as document_id,

        ---------- strings
        {{ json_value('doc', 'currency') }} as currency,

        ---------- numerics
        {{ json_value('doc', 'current_price', 'numeric(12, 2)') }} as current_price,
        {{ json_array_length('doc', 'price_changes') }} as price_changes_count,

        ---------- arrays
        {{ json_array('doc', 'price_changes') }} as price_changes,

        ---------- timestamps
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'product_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
