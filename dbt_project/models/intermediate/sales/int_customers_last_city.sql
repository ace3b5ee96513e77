-- Per customer: names and the city of their latest order (any status).
-- Snapshotted (snap_customers) so every change of city is kept.

with

orders as (
    select * from {{ ref('stg_sales_api__user_order_log') }}
),

latest_order as (
    {{ deduplicate('orders', 'customer_id', 'ordered_at desc, uniq_id desc') }}
),

customers as (
    select
        customer_id,
        first_name,
        last_name,
        city_id
    from latest_order
)

select * from customers
