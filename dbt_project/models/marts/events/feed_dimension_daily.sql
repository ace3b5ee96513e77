{{ config(materialized='incremental', unique_key=events_day_key()) }}
{% set window_start = events_window_start() %}

-- The daily table: per day, per dimension (os, gender, age) and value,
-- the sums over the day's users of what each did in the feed and the
-- messenger. A user's attributes are those of their first own event up to
-- that day (int_events_users_first_seen); a user who only received messages
-- and had never acted before counts under 'unknown'.

with

user_days as (
    select *
    from {{ ref('int_events_user_daily') }}
    where {{ events_window(window_start) }}
),

users as (
    select * from {{ ref('int_events_users_first_seen') }}
),

attributed as (
    select
        d.event_date as event_date,
        d.views as views,
        d.likes as likes,
        d.messages_received as messages_received,
        d.messages_sent as messages_sent,
        d.users_received as users_received,
        d.users_sent as users_sent,
        -- As of the day: a user first seen later is not known yet.
        case when u.first_seen_date <= d.event_date then u.os end as os,
        case when u.first_seen_date <= d.event_date then u.gender end as gender,
        case
            when u.first_seen_date <= d.event_date
                then cast(u.age as {{ dbt.type_string() }})
        end as age
    from user_days as d
    left join users as u on d.user_id = u.user_id
)

{% for dimension in ['os', 'gender', 'age'] %}
    select
        event_date,
        '{{ dimension }}' as dimension,
        coalesce({{ dimension }}, 'unknown') as dimension_value,
        cast(sum(views) as {{ dbt.type_bigint() }}) as views,
        cast(sum(likes) as {{ dbt.type_bigint() }}) as likes,
        cast(sum(messages_received) as {{ dbt.type_bigint() }}) as messages_received,
        cast(sum(messages_sent) as {{ dbt.type_bigint() }}) as messages_sent,
        cast(sum(users_received) as {{ dbt.type_bigint() }}) as users_received,
        cast(sum(users_sent) as {{ dbt.type_bigint() }}) as users_sent
    from attributed
    group by event_date, coalesce({{ dimension }}, 'unknown')
    {% if not loop.last %}union all{% endif %}
{% endfor %}
