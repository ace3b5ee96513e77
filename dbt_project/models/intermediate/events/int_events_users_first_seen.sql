{{ config(materialized='incremental', unique_key='user_id') }}
{% set window_start = events_window_start(anchor_column='last_seen_date') %}

-- One row per user: the attributes of the user's first own event (a feed
-- action or a sent message), when that was, and the last day the user was
-- seen. Receivers are not sightings: a message carries only its sender's
-- attributes. feed_dimension_daily reads this for users who only received
-- messages on a day, as of that day.

with

feed as (
    select
        user_id,
        event_at as seen_at,
        event_date as seen_date,
        1 as seen_rank,
        gender,
        age,
        country,
        city,
        os,
        source,
        exp_group
    from {{ ref('stg_events__feed_actions') }}
    where {{ events_window(window_start) }}
),

sent as (
    select
        sender_id as user_id,
        sent_at as seen_at,
        event_date as seen_date,
        2 as seen_rank,
        gender,
        age,
        country,
        city,
        os,
        source,
        exp_group
    from {{ ref('stg_events__message_actions') }}
    where {{ events_window(window_start) }}
),

seen_again as (
    select user_id from feed
    union all
    select user_id from sent
),

sightings as (
    select * from feed
    union all
    select * from sent
    {% if is_incremental() %}
    -- What the model holds for the users seen again: their first sighting
    -- stays unless a reloaded day holds an earlier one.
        union all
        select
            kept.user_id as user_id,
            kept.first_seen_at as seen_at,
            kept.last_seen_date as seen_date,
            0 as seen_rank,
            kept.gender as gender,
            kept.age as age,
            kept.country as country,
            kept.city as city,
            kept.os as os,
            kept.source as source,
            kept.exp_group as exp_group
        from {{ this }} as kept
        where kept.user_id in (select seen.user_id from seen_again as seen)
    {% endif %}
),

first_sightings as (
    {{ deduplicate('sightings', 'user_id', 'seen_at, seen_rank') }}
),

last_sightings as (
    select
        user_id,
        max(seen_date) as last_seen_date
    from sightings
    group by user_id
)

select
    f.user_id as user_id,
    f.seen_at as first_seen_at,
    {{ utc_date('f.seen_at') }} as first_seen_date,
    l.last_seen_date as last_seen_date,
    f.gender as gender,
    f.age as age,
    f.country as country,
    f.city as city,
    f.os as os,
    f.source as source,
    f.exp_group as exp_group
from first_sightings as f
inner join last_sightings as l on f.user_id = l.user_id
where f.user_id is not null
