{{ config(materialized='incremental') }}

-- Only new keys are added: an item keeps the name it was first seen with.

{{ new_keys_only(ref('stg_sales_api__user_order_log'), 'item_id', 'item_name',
                 'ordered_at, uniq_id') }}
