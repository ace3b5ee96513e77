-- Every message of every ticket, with the response-time rule applied. A
-- support message is a reply when user messages wait for it: those sent after
-- the previous support message. Its response time runs from the earliest of
-- them. A support message with nothing waiting (a follow-up, or support
-- writing first) is not a reply. A message without a readable sent_at cannot
-- be placed in time: it is counted, but takes no part in response times.

with

messages as (
    select * from {{ ref('int_support_messages_unnested') }}
),

numbered as (
    select
        ticket_id,
        message_number,
        sender,
        sent_at,
        -- User messages with the same count of earlier support messages wait
        -- for the same next support reply (undated messages sort last).
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
    where sender = 'user' and sent_at is not null
    group by ticket_id, support_messages_before
),

timed as (
    select
        numbered.ticket_id,
        numbered.message_number,
        numbered.sender,
        numbered.sent_at,
        waiting.first_waiting_at is not null as is_reply,
        waiting.first_waiting_at,
        round(
            extract(epoch from numbered.sent_at - waiting.first_waiting_at)::numeric / 60, 2
        ) as response_time_min
    from numbered
    left join waiting
        on
            numbered.ticket_id = waiting.ticket_id
            and numbered.support_messages_before = waiting.support_messages_before
            and numbered.sender = 'support'
            and numbered.sent_at is not null
)

select * from timed
