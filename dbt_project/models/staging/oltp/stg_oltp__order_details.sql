{{ config(materialized='incremental', unique_key='order_detail_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per order line: its latest replicated version (see stg_oltp__orders).

with

source as (
    select * from {{ source('oltp', 'order_details') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ cast_or_null('order_detail_id', 'bigint') }} as order_detail_id,
        {{ cast_or_null('order_id', 'bigint') }} as order_id,
        {{ cast_or_null('product_id', 'bigint') }} as product_id,

        ---------- numerics
        {{ cast_or_null('quantity', 'integer') }} as quantity,
        {{ cast_or_null('price_per_unit', 'numeric(10, 2)') }} as price_per_unit,
        {{ cast_or_null('total_price', 'numeric(12, 2)') }} as total_price,

        ---------- timestamps
        {{ cast_or_null('created_at', 'timestamptz') }} as created_at,
        {{ cast_or_null('updated_at', 'timestamptz') }} as updated_at,
        _loaded_at as loaded_at,

        ---------- change capture
        {{ change_columns() }},

        ---------- lineage
        _batch_id as batch_id

    from source
),

-- A version whose write time cannot be read is left out (see stg_oltp__orders).
versioned as (
    select * from renamed
    where updated_at is not null or {{ is_tombstone() }}
),

latest as (
    {{ deduplicate_incremental('versioned', 'order_detail_id', version_order()) }}
)

{{ without_deleted_keys('latest') }}
