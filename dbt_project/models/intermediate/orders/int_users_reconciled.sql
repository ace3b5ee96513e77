-- The warehouse's users: every replicated order-system user, plus the
-- registrations seen on the Kafka stream whose email no replicated user has
-- yet (SPEC.md: the users are the union, reconciled by email). When both
-- know an email, the order system's row wins; the stream adds only when it
-- saw the registration.

with

users as (
    select * from {{ ref('stg_oltp__users') }}
),

registrations as (
    select * from {{ ref('stg_kafka__new_users_events') }}
),

replicated as (
    select
        users.user_id,
        lower(trim(users.email)) as email,
        users.first_name,
        users.last_name,
        users.phone,
        users.registration_date,
        users.loyalty_status,
        'oltp' as record_source,
        registrations.message_at as streamed_at
    from users
    left join registrations
        on lower(trim(users.email)) = registrations.email
),

stream_only as (
    select
        cast(null as bigint) as user_id,
        registrations.email,
        registrations.first_name,
        registrations.last_name,
        registrations.phone,
        registrations.registration_date,
        registrations.loyalty_status,
        'stream' as record_source,
        registrations.message_at as streamed_at
    from registrations
    where not exists (
        select 1
        from replicated
        where replicated.email = registrations.email
    )
),

reconciled as (
    select * from replicated
    union all
    select * from stream_only
)

select * from reconciled
