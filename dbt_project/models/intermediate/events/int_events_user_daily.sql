{{ config(materialized='incremental', unique_key=events_day_key()) }}
{% set window_start = events_window_start() %}

-- One row per user and day with any activity: what the user did in the feed
-- (views, likes) and in the messenger (sent and received messages, and to
-- or from how many distinct users). The grain feed_dimension_daily
-- is aggregated from, and the daily active users are counted on.

with

feed as (
    select
        event_date,
        user_id,
        action
    from {{ ref('stg_events__feed_actions') }}
    where
        {{ events_window(window_start) }}
        and user_id is not null
        and action in ('view', 'like')
),

messages as (
    select
        event_date,
        sender_id,
        receiver_id
    from {{ ref('stg_events__message_actions') }}
    where {{ events_window(window_start) }} and sender_id is not null and receiver_id is not null
),

feed_users as (
    select
        event_date,
        user_id,
        sum(case when action = 'view' then 1 else 0 end) as views,
        sum(case when action = 'like' then 1 else 0 end) as likes
    from feed
    group by event_date, user_id
),

senders as (
    select
        event_date,
        sender_id as user_id,
        count(*) as messages_sent,
        count(distinct receiver_id) as users_sent
    from messages
    group by event_date, sender_id
),

receivers as (
    select
        event_date,
        receiver_id as user_id,
        count(*) as messages_received,
        count(distinct sender_id) as users_received
    from messages
    group by event_date, receiver_id
),

user_days as (
    select
        event_date,
        user_id
    from feed_users
    union all
    select
        event_date,
        user_id
    from senders
    union all
    select
        event_date,
        user_id
    from receivers
),

distinct_user_days as (
    select
        event_date,
        user_id
    from user_days
    group by event_date, user_id
)

select
    d.event_date as event_date,
    d.user_id as user_id,
    cast(coalesce(f.views, 0) as {{ dbt.type_bigint() }}) as views,
    cast(coalesce(f.likes, 0) as {{ dbt.type_bigint() }}) as likes,
    cast(coalesce(s.messages_sent, 0) as {{ dbt.type_bigint() }}) as messages_sent,
    cast(coalesce(s.users_sent, 0) as {{ dbt.type_bigint() }}) as users_sent,
    cast(coalesce(r.messages_received, 0) as {{ dbt.type_bigint() }}) as messages_received,
    cast(coalesce(r.users_received, 0) as {{ dbt.type_bigint() }}) as users_received,
    f.user_id is not null as feed_active
from distinct_user_days as d
left join feed_users as f
    on d.event_date = f.event_date and d.user_id = f.user_id
left join senders as s
    on d.event_date = s.event_date and d.user_id = s.user_id
left join receivers as r
    on d.event_date = r.event_date and d.user_id = r.user_id
