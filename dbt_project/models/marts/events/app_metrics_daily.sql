{{ config(materialized='incremental', unique_key=events_day_key()) }}
{% set window_start = events_window_start() %}

-- The app metrics per day: daily active users of the feed, of the
-- messenger (users who sent a message) and of both, views, likes, CTR,
-- messages sent, distinct senders and distinct receivers, and the
-- messenger's "sent/received" ratio. What the daily report and the app
-- dashboard read.

with

user_days as (
    select *
    from {{ ref('int_events_user_daily') }}
    where {{ events_window(window_start) }}
),

daily as (
    select
        event_date,
        sum(case when feed_active then 1 else 0 end) as dau_feed,
        sum(case when messages_sent > 0 then 1 else 0 end) as dau_messenger,
        sum(case when feed_active and messages_sent > 0 then 1 else 0 end) as dau_both,
        sum(views) as views,
        sum(likes) as likes,
        sum(messages_sent) as messages_sent,
        sum(case when messages_sent > 0 then 1 else 0 end) as senders,
        sum(case when messages_received > 0 then 1 else 0 end) as receivers
    from user_days
    group by event_date
)

select
    event_date,
    cast(dau_feed as {{ dbt.type_bigint() }}) as dau_feed,
    cast(dau_messenger as {{ dbt.type_bigint() }}) as dau_messenger,
    cast(dau_both as {{ dbt.type_bigint() }}) as dau_both,
    cast(views as {{ dbt.type_bigint() }}) as views,
    cast(likes as {{ dbt.type_bigint() }}) as likes,
    cast(likes as double precision) / nullif(cast(views as double precision), 0) as ctr,
    cast(messages_sent as {{ dbt.type_bigint() }}) as messages_sent,
    cast(senders as {{ dbt.type_bigint() }}) as senders,
    cast(receivers as {{ dbt.type_bigint() }}) as receivers,
    cast(senders as double precision)
    / nullif(cast(receivers as double precision), 0) as sent_received_ratio
from daily
