-- Current version of each customer; the city history is in snap_customers.

with

history as (
    select * from {{ ref('snap_customers') }}
),

current_versions as (
    select
        customer_id,
        first_name,
        last_name,
        city_id
    from history
    where dbt_valid_to is null
)

select * from current_versions
