-- Weekly retention per item. A customer's orders in a week are
-- their shipped order lines that ISO week, across all items: one makes them
-- "new" that week, more than one "returning". Refunds are counted apart.

with

sales as (
    select
        *,
        date_trunc('week', date_id)::date as week_start
    from {{ ref('f_sales') }}
),

orders_per_customer as (
    select
        week_start,
        customer_id,
        sum(case when status = 'shipped' then 1 else 0 end) as orders_in_week
    from sales
    group by week_start, customer_id
),

classified as (
    select
        sales.week_start,
        sales.item_id,
        sales.customer_id,
        sales.status,
        sales.payment_amount,
        orders_per_customer.orders_in_week
    from sales
    inner join orders_per_customer
        on
            sales.week_start = orders_per_customer.week_start
            and sales.customer_id = orders_per_customer.customer_id
),

retention as (
    select
        'weekly' as period_name,
        to_char(week_start, 'IYYY-"W"IW') as period_id,
        item_id,
        count(distinct case
            when status = 'shipped' and orders_in_week = 1 then customer_id
        end)::integer as new_customers_count,
        count(distinct case
            when status = 'shipped' and orders_in_week > 1 then customer_id
        end)::integer as returning_customers_count,
        count(distinct case
            when status = 'refunded' then customer_id
        end)::integer as refunded_customer_count,
        coalesce(sum(case
            when status = 'shipped' and orders_in_week = 1 then payment_amount
        end), 0)::numeric(14, 2) as new_customers_revenue,
        coalesce(sum(case
            when status = 'shipped' and orders_in_week > 1 then payment_amount
        end), 0)::numeric(14, 2) as returning_customers_revenue,
        sum(case when status = 'refunded' then 1 else 0 end)::integer as customers_refunded
    from classified
    group by week_start, item_id
)

select * from retention
