with

source as (
    select * from {{ source('sales_api', 'customer_research') }}
),

latest as (
    {{ deduplicate('source', 'date_id, category_id, geo_id',
                   '_increment_date desc, _row_number desc') }}
),

renamed as (
    select
        ---------- ids
        category_id::integer as category_id,
        geo_id::integer as city_id,

        ---------- numerics
        sales_qty::integer as sales_qty,
        sales_amt::numeric(14, 2) as sales_amount,

        ---------- dates
        date_id::date as sales_date,
        _increment_date as increment_date

    from latest
)

select * from renamed
