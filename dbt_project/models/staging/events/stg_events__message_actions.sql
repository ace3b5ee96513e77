with

source as (
    select * from {{ source('events', 'message_actions') }}
),

renamed as (
    select
        -- ids
        cast(user_id as {{ dbt.type_bigint() }}) as sender_id,
        cast(receiver_id as {{ dbt.type_bigint() }}) as receiver_id,

        -- strings: the sender's attributes
        gender,
        country,
        city,
        os,
        source,

        -- numerics
        cast(age as {{ dbt.type_int() }}) as age,
        cast(exp_group as {{ dbt.type_int() }}) as exp_group,

        -- dates and timestamps
        time as sent_at,
        {{ event_date_of('time') }} as event_date

    from source
)

select * from renamed
