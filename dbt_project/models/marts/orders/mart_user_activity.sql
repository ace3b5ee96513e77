-- Orders and spend per user and current order status. Each order
-- counts once, in its current status. A table: an order moves between rows
-- when its status changes, so rows are not append-only.

with

orders as (
    select * from {{ ref('stg_oltp__orders') }}
),

users as (
    select * from {{ ref('int_users_reconciled') }}
),

-- An order without a readable user or status cannot be attributed: left out
-- (stg_oltp__orders' warn tests count it).
per_user_and_status as (
    select
        user_id,
        status,
        count(*)::integer as order_count,
        coalesce(sum(total_amount), 0)::numeric(14, 2) as total_spent
    from orders
    where user_id is not null and status is not null
    group by user_id, status
),

-- Names come from the user's current row; they are null while an order's
-- user has not been replicated yet.
named as (
    select
        per_user_and_status.user_id,
        users.first_name,
        users.last_name,
        per_user_and_status.status,
        per_user_and_status.order_count,
        per_user_and_status.total_spent
    from per_user_and_status
    left join users on per_user_and_status.user_id = users.user_id
)

select * from named
