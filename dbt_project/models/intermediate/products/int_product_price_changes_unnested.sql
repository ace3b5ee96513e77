-- One row per price change of each product (from the latest document
-- version). A field of a change that cannot be read is null.

with

products as (
    select * from {{ ref('stg_mongo__product_price_history') }}
),

unnested as (
    select
        products.product_id,
        products.currency,
        price_change.change_position as change_number,
        price_change.body
    from products
    cross join
        lateral jsonb_array_elements(products.price_changes)
        with ordinality as price_change (body, change_position)
),

renamed as (
    select
        ---------- ids
        product_id,
        change_number::integer as change_number,

        ---------- strings
        currency,

        ---------- numerics
        {{ json_value('body', 'price', 'numeric(12, 2)') }} as price,

        ---------- timestamps
        {{ json_value('body', 'date', 'timestamptz') }} as changed_at

    from unnested
)

select * from renamed
