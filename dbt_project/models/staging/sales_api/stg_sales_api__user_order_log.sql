-- One row per order line. Duplicates and corrected re-sends share a uniq_id:
-- the row from the newest increment wins (the last one in its file).

with

source as (
    select * from {{ source('sales_api', 'user_order_log') }}
),

latest as (
    {{ deduplicate('source', 'uniq_id', '_increment_date desc, _row_number desc') }}
),

renamed as (
    select
        ---------- ids
        uniq_id,
        customer_id::bigint as customer_id,
        item_id::bigint as item_id,
        city_id::integer as city_id,

        ---------- strings
        first_name,
        last_name,
        item_name,
        city_name,
        -- Increments from before the partner added the column are all shipped.
        coalesce(status, 'shipped') as status,

        ---------- numerics
        quantity::integer as quantity,
        payment_amount::numeric(14, 2) as payment_amount,

        ---------- dates and timestamps
        date_time::timestamp as ordered_at,
        date_time::date as order_date,
        _increment_date as increment_date,
        _loaded_at as loaded_at,

        ---------- lineage
        _batch_id as batch_id

    from latest
)

select * from renamed
