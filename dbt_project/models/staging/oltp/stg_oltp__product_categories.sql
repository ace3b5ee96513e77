-- Latest version of every product category (a small table: a view).

with

source as (
    select * from {{ source('oltp', 'product_categories') }}
),

renamed as (
    select
        ---------- ids
        {{ cast_or_null('category_id', 'bigint') }} as category_id,

        ---------- strings
        name as category_name,

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
    {{ deduplicate_incremental('versioned', 'category_id', version_order()) }}
)

{{ without_deleted_keys('latest') }}
