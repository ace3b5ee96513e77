with

source as (
    select * from {{ source('events', 'feed_actions') }}
),

renamed as (
    select
        -- ids
        cast(user_id as {{ dbt.type_bigint() }}) as user_id,
        cast(post_id as {{ dbt.type_bigint() }}) as post_id,

        -- strings
        action,
        gender,
        country,
        city,
        os,
        source,

        -- numerics
        cast(age as {{ dbt.type_int() }}) as age,
        cast(exp_group as {{ dbt.type_int() }}) as exp_group,

        -- dates and timestamps
        time as event_at,
        {{ event_date_of('time') }} as event_date

    from source
)

select * from renamed
