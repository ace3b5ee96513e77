-- Per ticket: the support-efficiency measures of its current version.
-- Snapshotted (snap_support_tickets_measured) to keep every change's history.

with

tickets as (
    select * from {{ ref('stg_mongo__support_tickets') }}
),

messages as (
    select * from {{ ref('stg_mongo__support_ticket_messages') }}
),

replies as (
    select * from {{ ref('int_support_replies_timed') }}
),

message_counts as (
    select
        ticket_id,
        min(sent_at) as first_message_dt,
        max(sent_at) as last_message_dt,
        sum(case when sender = 'support' then 1 else 0 end) as support_messages,
        sum(case when sender = 'user' then 1 else 0 end) as user_messages
    from messages
    group by ticket_id
),

response_times as (
    select
        ticket_id,
        avg(response_time_min) as avg_response_time_min
    from replies
    group by ticket_id
),

measured as (
    select
        tickets.ticket_id,
        tickets.user_id,
        tickets.status,
        tickets.issue_type,
        message_counts.first_message_dt,
        message_counts.last_message_dt,
        coalesce(message_counts.support_messages, 0)::integer as support_messages,
        coalesce(message_counts.user_messages, 0)::integer as user_messages,
        round(response_times.avg_response_time_min::numeric, 2) as avg_response_time_min
    from tickets
    left join message_counts on tickets.ticket_id = message_counts.ticket_id
    left join response_times on tickets.ticket_id = response_times.ticket_id
)

select * from measured
