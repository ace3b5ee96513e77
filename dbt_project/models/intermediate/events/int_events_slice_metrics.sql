{{ config(materialized='incremental', unique_key=events_day_key()) }}
{% set window_start = events_window_start() %}

-- The app metrics per 15-minute slice (UTC), one row per slice and metric:
-- users_feed, views, likes, ctr, users_messenger, messages_sent. Every slice
-- of a day with events is here, from 00:00 up to the last complete slice: a
-- slice with no events has zeros (an outage must show as a zero, not as a
-- gap; a day without a single event has no slices), and the slice holding
-- the latest event is left out until a later event shows it is over.
-- Slices are numbered from 1970-01-01 00:00 UTC (slice_no * 900 s).

{% set slice_seconds = 900 %}

with

feed as (
    select
        event_date,
        {{ int_div(epoch_seconds('event_at'), slice_seconds) }} as slice_no,
        user_id,
        action
    from {{ ref('stg_events__feed_actions') }}
    where
        {{ events_window(window_start) }}
        and event_at is not null
        and action in ('view', 'like')
),

messages as (
    select
        event_date,
        {{ int_div(epoch_seconds('sent_at'), slice_seconds) }} as slice_no,
        sender_id
    from {{ ref('stg_events__message_actions') }}
    where {{ events_window(window_start) }} and sent_at is not null
),

feed_slices as (
    select
        slice_no,
        count(distinct user_id) as users_feed,
        sum(case when action = 'view' then 1 else 0 end) as views,
        sum(case when action = 'like' then 1 else 0 end) as likes
    from feed
    group by slice_no
),

message_slices as (
    select
        slice_no,
        count(distinct sender_id) as users_messenger,
        count(*) as messages_sent
    from messages
    group by slice_no
),

days as (
    select event_date from feed
    union all
    select event_date from messages
),

distinct_days as (
    select
        event_date,
        {{ dbt.datediff(date_literal('1970-01-01'), 'event_date', 'day') }}
        * {{ 86400 // slice_seconds }} as first_slice_no
    from days
    group by event_date
),

-- The latest event in the source, also past the logical day: a rebuild of
-- an older day keeps its last slice once later events exist.
latest_events as (
    select max(event_at) as latest_at
    from {{ ref('stg_events__feed_actions') }}
    where {{ events_window(window_start, up_to_logical_date=false) }}
    union all
    select max(sent_at) as latest_at
    from {{ ref('stg_events__message_actions') }}
    where {{ events_window(window_start, up_to_logical_date=false) }}
),

last_event_slice as (
    select {{ int_div(epoch_seconds('max(latest_at)'), slice_seconds) }} as slice_no
    from latest_events
),

slices_of_a_day as (
    {{ integers(0, 86400 // slice_seconds - 1) }}
),

spine as (
    select
        d.event_date as event_date,
        d.first_slice_no + k.n as slice_no
    from distinct_days as d
    cross join slices_of_a_day as k
),

complete_slices as (
    select
        spine.event_date as event_date,
        spine.slice_no as slice_no
    from spine
    cross join last_event_slice
    where spine.slice_no < last_event_slice.slice_no
),

slices as (
    select
        c.event_date as event_date,
        c.slice_no as slice_no,
        cast(coalesce(f.users_feed, 0) as double precision) as users_feed,
        cast(coalesce(f.views, 0) as double precision) as views,
        cast(coalesce(f.likes, 0) as double precision) as likes,
        cast(f.likes as double precision)
        / nullif(cast(f.views as double precision), 0) as ctr,
        cast(coalesce(m.users_messenger, 0) as double precision) as users_messenger,
        cast(coalesce(m.messages_sent, 0) as double precision) as messages_sent
    from complete_slices as c
    left join feed_slices as f on c.slice_no = f.slice_no
    left join message_slices as m on c.slice_no = m.slice_no
),

-- One pass over the slices, crossed with the metric names: a union of one
-- select per metric made ClickHouse compute the slices (and read the
-- events) once per metric.
{% set metrics = ['users_feed', 'views', 'likes', 'ctr', 'users_messenger', 'messages_sent'] %}
metric_names as (
    {% for metric in metrics %}
        select '{{ metric }}' as metric
        {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    s.event_date as event_date,
    s.slice_no as slice_no,
    {{ from_epoch_seconds('s.slice_no * ' ~ slice_seconds) }} as slice_start,
    m.metric as metric,
    case m.metric
        {% for metric in metrics %}
            when '{{ metric }}' then s.{{ metric }}
        {% endfor %}
    end as value
from slices as s
cross join metric_names as m
