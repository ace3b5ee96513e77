-- One row per support reply that answered something, with its response time:
-- the reply's time minus the earliest user message still unanswered before it.
-- Support messages with nothing waiting (a follow-up, or support writing
-- first) are not replies and are left out.

with

messages as (
    select * from {{ ref('stg_mongo__support_ticket_messages') }}
),

numbered as (
    select
        ticket_id,
        message_number,
        sender,
        sent_at,
        -- User messages with the same count of earlier support messages wait
        -- for the same next support reply.
        coalesce(
            sum(case when sender = 'support' then 1 else 0 end) over (
                partition by ticket_id
                order by sent_at, message_number
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as support_messages_before
    from messages
),

waiting as (
    select
        ticket_id,
        support_messages_before,
        min(sent_at) as first_waiting_at
    from numbered
    where sender = 'user'
    group by ticket_id, support_messages_before
),

replies as (
    select
        numbered.ticket_id,
        numbered.message_number,
        waiting.first_waiting_at,
        numbered.sent_at as replied_at,
        round(
            extract(epoch from numbered.sent_at - waiting.first_waiting_at)::numeric / 60, 2
        ) as response_time_min
    from numbered
    inner join waiting
        on
            numbered.ticket_id = waiting.ticket_id
            and numbered.support_messages_before = waiting.support_messages_before
    where numbered.sender = 'support'
)

select * from replies
