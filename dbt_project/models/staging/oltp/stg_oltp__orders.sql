{{ config(materialized='incremental', unique_key='order_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per order: its latest replicated version (a status change lands as
-- a new version with a later updated_at). Incremental on loader batches:
-- deduplicate_incremental keeps the version a full refresh would keep.

with

source as (
    select * from {{ source('oltp', 'orders') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ cast_or_null('order_id', 'bigint') }} as order_id,
        {{ cast_or_null('user_id', 'bigint') }} as user_id,

        ---------- strings
        status,

        ---------- numerics
        {{ cast_or_null('total_amount', 'numeric(12, 2)') }} as total_amount,

        ---------- timestamps
        {{ cast_or_null('order_date', 'timestamptz') }} as ordered_at,
        {{ cast_or_null('created_at', 'timestamptz') }} as created_at,
        {{ cast_or_null('updated_at', 'timestamptz') }} as updated_at,
        _loaded_at as loaded_at,

        ---------- change capture
        {{ change_columns() }},

        ---------- lineage
        _batch_id as batch_id

    from source
),

-- A version whose write time cannot be read cannot be ranked among its key's
-- versions: it is left out (text_key_castable counts it).
versioned as (
    select * from renamed
    where updated_at is not null or {{ is_tombstone() }}
),

latest as (
    {{ deduplicate_incremental('versioned', 'order_id', version_order()) }}
)

{{ without_deleted_keys('latest') }}
