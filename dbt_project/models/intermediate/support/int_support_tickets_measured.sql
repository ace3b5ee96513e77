-- Per ticket: the support-efficiency measures of its current version.
-- Snapshotted (snap_support_tickets_measured) to keep every change's history.

with

tickets as (
    select * from {{ ref('stg_mongo__support_tickets') }}
),

messages as (
    select * from {{ ref('int_support_messages_timed') }}
),

message_measures as (
    select
        ticket_id,
        min(sent_at) as first_message_dt,
        max(sent_at) as last_message_dt,
        sum(case when sender = 'support' then 1 else 0 end) as support_messages,
        sum(case when sender = 'user' then 1 else 0 end) as user_messages,
        -- Only replies have a response time; avg skips the other messages.
        avg(response_time_min) as avg_response_time_min
    from messages
    group by ticket_id
),

measured as (
    select
        tickets.ticket_id,
        tickets.user_id,
        tickets.status,
        tickets.issue_type,
        message_measures.first_message_dt,
        message_measures.last_message_dt,
        coalesce(message_measures.support_messages, 0)::integer as support_messages,
        coalesce(message_measures.user_messages, 0)::integer as user_messages,
        round(message_measures.avg_response_time_min::numeric, 2) as avg_response_time_min
    from tickets
    left join message_measures on tickets.ticket_id = message_measures.ticket_id
)

select * from measured
