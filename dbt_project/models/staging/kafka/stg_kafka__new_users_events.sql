{{ config(materialized='incremental', unique_key='email',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per registered email: the first registration event (by message
-- time, then partition and offset). A re-delivered message lands again under
-- a new offset and never replaces the first copy, also when it lands in a
-- later batch; an event with an earlier time landing late does replace it.

with

source as (
    select * from {{ source('kafka', 'new_users_events') }}
    {{ incremental_since() }}
),

-- The loader lands only values jsonb can store, but the cast stays safe: a
-- value jsonb refuses (NaN, \u0000) that reached raw by other means reads as
-- null, so its email is null and the event is left out (json_key_castable
-- counts it) instead of failing the run.
parsed as (
    select
        *,
        {{ cast_or_null('value', 'jsonb') }} as payload
    from source
),

renamed as (
    select
        ---------- ids
        -- The natural key: emails compare case-insensitively.
        lower(trim({{ json_value('payload', 'email') }})) as email,

        ---------- strings
        {{ json_value('payload', 'first_name') }} as first_name,
        {{ json_value('payload', 'last_name') }} as last_name,
        {{ json_value('payload', 'phone') }} as phone,
        -- A level outside the known ones is quarantined (meta.quarantine).
        {{ json_value('payload', 'loyalty_status') }} as loyalty_status,

        ---------- dates
        {{ json_value('payload', 'registration_date', 'date') }} as registration_date,

        ---------- timestamps
        -- Order needs a time: the landing time when the broker sent none.
        coalesce(message_timestamp, _loaded_at) as message_at,
        _loaded_at as loaded_at,

        ---------- lineage
        topic,
        partition as partition_number,
        "offset" as message_offset,
        _batch_id as batch_id

    from parsed
),

first_registration as (
    {{ deduplicate_incremental('renamed', 'email',
                               ['message_at', 'topic', 'partition_number', 'message_offset'],
                               keep='first') }}
)

select * from first_registration
