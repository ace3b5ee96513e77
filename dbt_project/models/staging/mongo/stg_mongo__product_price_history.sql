with

source as (
    select * from {{ source('mongo', 'product_price_history') }}
),

latest as (
    {{ deduplicate('source', "(doc ->> 'product_id')",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        (doc ->> 'product_id')::bigint as product_id,
        _id as document_id,

        ---------- strings
        doc ->> 'currency' as currency,

        ---------- numerics
        (doc ->> 'current_price')::numeric(12, 2) as current_price,
        jsonb_array_length(doc -> 'price_changes') as price_changes_count,

        ---------- arrays
        doc -> 'price_changes' as price_changes,

        ---------- timestamps
        _source_updated_at as updated_at,
        _loaded_at as loaded_at

    from latest
)

select * from renamed
