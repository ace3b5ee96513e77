{{
    config(
        materialized='incremental',
        unique_key='city_id',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

-- Only new keys are added (seed 004): a city keeps the name it was first seen with.

with

orders as (
    select * from {{ ref('stg_sales_api__user_order_log') }}
),

first_seen as (
    {{ deduplicate('orders', 'city_id', 'ordered_at, uniq_id') }}
),

cities as (
    select
        city_id,
        city_name
    from first_seen
    {% if is_incremental() %}
        where city_id not in (select known.city_id from {{ this }} as known)
    {% endif %}
)

select * from cities
