-- Per user: the activity measures of user_activity, as of the
-- run's logical day (var logical_date, which make run passes; when null, the
-- latest day with a session in the data, so a plain `dbt build` or an
-- asset-triggered Airflow run agrees with make run rather than with the wall
-- clock). The counts are over all loaded history; only
-- days_active_last_month is a window ending on the as-of day. Snapshotted
-- (snap_user_activity_measured), which is where etl_valid_from comes from.
--
-- Users: every user with an id the warehouse knows of: the reconciled users
-- (replicated from the order system), and any user id seen in sessions,
-- orders or reviews before its user row is replicated. Registrations seen
-- only on the stream have no id yet, so no activity to measure: they appear
-- once replicated.

-- Tag daily_sql: its SQL holds the run's day, so make run's daily build
-- recreates it every day (selectors.yml).
{{ config(tags=['daily_sql']) }}

{%- set logical_date = run_logical_date() %}

with

users as (
    select * from {{ ref('int_users_reconciled') }}
),

sessions as (
    select * from {{ ref('stg_mongo__user_sessions') }}
),

orders as (
    select * from {{ ref('stg_oltp__orders') }}
),

order_lines as (
    select * from {{ ref('int_order_details_enriched') }}
),

reviews as (
    select * from {{ ref('stg_mongo__moderation_queue') }}
),

as_of as (
    select
        {% if logical_date %}
            '{{ logical_date }}'::date
        {% else %}
            (
                select max((started_at at time zone 'UTC')::date) from sessions
            )
        {% endif %} as as_of_date
),

known_users as (
    select user_id from users
    where user_id is not null
    union
    select user_id from sessions
    where user_id is not null
    union
    select user_id from orders
    where user_id is not null
    union
    select user_id from reviews
    where user_id is not null
),

session_measures as (
    select
        user_id,
        count(*) as sessions_cnt,
        -- Sessions whose page list is unreadable take no part in the mean.
        round(avg(pages_visited_count), 2) as avg_pages_visited
    from sessions
    where user_id is not null
    group by user_id
),

-- An active day is a (UTC) day on which the user started a session.
active_days as (
    select distinct
        user_id,
        (started_at at time zone 'UTC')::date as active_date
    from sessions
    where user_id is not null and started_at is not null
),

day_measures as (
    select
        active_days.user_id,
        count(*) as days_active,
        -- The 30 days up to and including the as-of day.
        sum(
            case
                when active_days.active_date between as_of.as_of_date - 29 and as_of.as_of_date
                    then 1
                else 0
            end
        ) as days_active_last_month
    from active_days
    cross join as_of
    group by active_days.user_id
),

order_measures as (
    select
        user_id,
        count(*) as orders_cnt
    from orders
    where user_id is not null
    group by user_id
),

review_measures as (
    select
        user_id,
        count(*) as reviews_cnt
    from reviews
    where user_id is not null
    group by user_id
),

-- Quantity ordered per category, over the user's orders in any status.
category_quantities as (
    select
        user_id,
        category_name,
        sum(quantity) as quantity
    from order_lines
    where
        user_id is not null
        and category_name is not null
        and quantity is not null
    group by user_id, category_name
),

-- The category with the most; a tie goes to the first name in order.
preferred_categories as (
    {{ deduplicate('category_quantities', 'user_id', 'quantity desc, category_name') }}
),

measured as (
    select
        known_users.user_id,
        coalesce(session_measures.sessions_cnt, 0)::integer as sessions_cnt,
        session_measures.avg_pages_visited,
        coalesce(day_measures.days_active, 0)::integer as days_active,
        coalesce(day_measures.days_active_last_month, 0)::integer as days_active_last_month,
        coalesce(order_measures.orders_cnt, 0)::integer as orders_cnt,
        coalesce(review_measures.reviews_cnt, 0)::integer as reviews_cnt,
        preferred_categories.category_name as preferred_category
    from known_users
    left join session_measures on known_users.user_id = session_measures.user_id
    left join day_measures on known_users.user_id = day_measures.user_id
    left join order_measures on known_users.user_id = order_measures.user_id
    left join review_measures on known_users.user_id = review_measures.user_id
    left join preferred_categories on known_users.user_id = preferred_categories.user_id
)

select * from measured
