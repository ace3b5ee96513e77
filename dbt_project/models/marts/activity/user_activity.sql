-- Current version of every user's activity measures, stamped with the ETL
-- time that version became current (from the snapshot's history). A table:
-- a user's measures change in place (new sessions, orders, reviews, and the
-- last-month window moving with the as-of day), so nothing is append-only;
-- the snapshot is what keeps the history.

with

history as (
    select * from {{ ref('snap_user_activity_measured') }}
),

current_versions as (
    select
        user_id,
        sessions_cnt,
        avg_pages_visited,
        days_active,
        days_active_last_month,
        orders_cnt,
        reviews_cnt,
        preferred_category,
        -- Snapshots stamp session-local timestamps without zone; make it explicit.
        dbt_valid_from::timestamptz as etl_valid_from
    from history
    where dbt_valid_to is null
)

select * from current_versions
