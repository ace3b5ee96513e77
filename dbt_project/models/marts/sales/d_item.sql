{{
    config(
        materialized='incremental',
        unique_key='item_id',
        incremental_strategy='append',
        on_schema_change='append_new_columns',
    )
}}

-- Only new keys are added (seed 004): an item keeps the name it was first seen with.

with

orders as (
    select * from {{ ref('stg_sales_api__user_order_log') }}
),

first_seen as (
    {{ deduplicate('orders', 'item_id', 'ordered_at, uniq_id') }}
),

items as (
    select
        item_id,
        item_name
    from first_seen
    {% if is_incremental() %}
        where item_id not in (select known.item_id from {{ this }} as known)
    {% endif %}
)

select * from items
