{{
    config(
        materialized='incremental',
        unique_key='item_id',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

-- Only new keys are added (seed 004): an item keeps the name it was first seen with.

{{ new_keys_only(ref('stg_sales_api__user_order_log'), 'item_id', 'item_name',
                 'ordered_at, uniq_id') }}
