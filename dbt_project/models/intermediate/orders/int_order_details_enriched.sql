-- One row per order line (current versions), with what the marts need to
-- group it: its order's user and current status, and its product's name and
-- category. Left joins: a line whose order or product has not landed yet
-- keeps its place with nulls there (the staging relationships tests warn).

with

order_details as (
    select * from {{ ref('stg_oltp__order_details') }}
),

orders as (
    select * from {{ ref('stg_oltp__orders') }}
),

products as (
    select * from {{ ref('stg_oltp__products') }}
),

categories as (
    select * from {{ ref('stg_oltp__product_categories') }}
),

enriched as (
    select
        order_details.order_detail_id,
        order_details.order_id,
        orders.user_id,
        orders.status,
        order_details.product_id,
        products.product_name,
        products.category_id,
        categories.category_name,
        order_details.quantity,
        order_details.price_per_unit,
        order_details.total_price
    from order_details
    left join orders on order_details.order_id = orders.order_id
    left join products on order_details.product_id = products.product_id
    left join categories on products.category_id = categories.category_id
)

select * from enriched
