{{ config(materialized='incremental', unique_key='uniq_id') }}

-- One row per order line. Refunds count with a negative amount, so summing
-- payment_amount gives net revenue. Incremental on loader batches: a corrected
-- re-send or a reloaded date replaces its lines.

with

orders as (
    select * from {{ ref('stg_sales_api__user_order_log') }}
    {{ incremental_since('batch_id', 'batch_id') }}
),

facts as (
    select
        uniq_id,
        order_date as date_id,
        item_id,
        customer_id,
        city_id,
        status,
        quantity,
        case
            when status = 'refunded' then -payment_amount
            else payment_amount
        end as payment_amount,
        batch_id
    from orders
)

select * from facts
