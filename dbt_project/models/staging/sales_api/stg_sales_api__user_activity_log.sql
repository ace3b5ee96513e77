with

source as (
    select * from {{ source('sales_api', 'user_activity_log') }}
),

latest as (
    {{ deduplicate('source', 'uniq_id', '_increment_date desc, _row_number desc') }}
),

renamed as (
    select
        ---------- ids
        uniq_id,
        customer_id::bigint as customer_id,
        action_id::integer as action_id,

        ---------- numerics
        quantity::integer as quantity,

        ---------- timestamps
        date_time::timestamp as acted_at,
        _increment_date as increment_date

    from latest
)

select * from renamed
