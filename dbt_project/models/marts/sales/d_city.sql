{{ config(materialized='incremental') }}

-- Only new keys are added: a city keeps the name it was first seen with.

{{ new_keys_only(ref('stg_sales_api__user_order_log'), 'city_id', 'city_name',
                 'ordered_at, uniq_id') }}
