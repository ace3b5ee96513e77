-- Current version of every ticket's measures, stamped with the ETL time that
-- version became current (from the snapshot's history).

with

history as (
    select * from {{ ref('snap_support_tickets_measured') }}
),

current_versions as (
    select
        ticket_id,
        user_id,
        status,
        issue_type,
        first_message_dt,
        last_message_dt,
        support_messages,
        user_messages,
        avg_response_time_min,
        -- Snapshots stamp session-local timestamps without zone; make it explicit.
        dbt_valid_from::timestamptz as etl_valid_from
    from history
    where dbt_valid_to is null
)

select * from current_versions
