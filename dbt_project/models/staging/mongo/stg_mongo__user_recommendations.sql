with

source as (
    select * from {{ source('mongo', 'user_recommendations') }}
),

latest as (
    {{ deduplicate('source', "(doc ->> 'user_id')",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        (doc ->> 'user_id')::bigint as user_id,
        _id as document_id,

        ---------- numerics
        jsonb_array_length(doc -> 'recommended_products') as recommended_products_count,

        ---------- arrays
        doc -> 'recommended_products' as recommended_products,

        ---------- timestamps
        (doc ->> 'last_updated')::timestamptz as last_updated_at,
        _loaded_at as loaded_at

    from latest
)

select * from renamed
