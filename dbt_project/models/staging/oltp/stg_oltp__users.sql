{{ config(materialized='incremental', unique_key='user_id',
          meta={'new_rows': {'column': 'loaded_at', 'unit': 'hour'}}) }}

-- One row per user: the latest replicated version (a loyalty change lands as
-- a new version). Incremental on loader batches (see stg_oltp__orders).

with

source as (
    select * from {{ source('oltp', 'users') }}
    {{ incremental_since() }}
),

renamed as (
    select
        ---------- ids
        {{ cast_or_null('user_id', 'bigint') }} as user_id,

        ---------- strings
        first_name,
        last_name,
        email,
        phone,
        loyalty_status,

        ---------- dates
        {{ cast_or_null('registration_date', 'date') }} as registration_date,

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
    {{ deduplicate_incremental('versioned', 'user_id', version_order()) }}
)

{{ without_deleted_keys('latest') }}
