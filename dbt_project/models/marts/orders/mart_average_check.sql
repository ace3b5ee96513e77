-- The average order total per current order status and the ordering user's
-- current loyalty level. A table: orders move between rows when
-- their status or their user's level changes.

with

orders as (
    select * from {{ ref('stg_oltp__orders') }}
),

users as (
    select * from {{ ref('int_users_reconciled') }}
),

-- Only orders whose user (and so level) is known, with a readable total.
leveled as (
    select
        orders.status,
        users.loyalty_status,
        orders.total_amount
    from orders
    inner join users on orders.user_id = users.user_id
    where
        orders.total_amount is not null
        and orders.status is not null
        and users.loyalty_status is not null
),

average_checks as (
    select
        status,
        loyalty_status,
        round(avg(total_amount), 2)::numeric(12, 2) as average_check
    from leveled
    group by status, loyalty_status
)

select * from average_checks
