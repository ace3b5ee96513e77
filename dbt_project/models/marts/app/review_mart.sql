{{
    config(
        materialized='incremental',
        unique_key='product_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

-- Per product review measures. Incremental: only products with reviews loaded
-- since the last change are recomputed, and last_updated moves only when a
-- product's measures actually change (the mart row's own update time, as
-- seed 000 defines it).

with

reviews as (
    select * from {{ ref('stg_mongo__moderation_queue') }}
),

{% if is_incremental() %}
changed_products as (
    select distinct product_id
    from reviews
    where loaded_at > (
        select coalesce(max(last_updated), '-infinity'::timestamptz) from {{ this }}
    ) - interval '{{ var("incremental_lookback_hours") }} hours'
),
{% endif %}

measured as (
    select
        reviews.product_id,
        count(*)::integer as total_reviews,
        round(avg(reviews.rating)::numeric, 2) as avg_rating,
        round(
            sum(case when reviews.moderation_status = 'approved' then 1 else 0 end)::numeric
            / count(*),
            4
        ) as approved_reviews_ratio,
        sum(reviews.flags_count)::integer as total_flags
    from reviews
    {% if is_incremental() %}
        inner join changed_products on reviews.product_id = changed_products.product_id
    {% endif %}
    group by reviews.product_id
),

stamped as (
    select
        measured.product_id,
        measured.total_reviews,
        measured.avg_rating,
        measured.approved_reviews_ratio,
        measured.total_flags,
        {% if is_incremental() %}
            case
                when
                    (previous.total_reviews, previous.avg_rating,
                     previous.approved_reviews_ratio, previous.total_flags)
                    is not distinct from
                    (measured.total_reviews, measured.avg_rating,
                     measured.approved_reviews_ratio, measured.total_flags)
                    then previous.last_updated
                else {{ run_timestamp() }}
            end
        {% else %}
            {{ run_timestamp() }}
        {% endif %} as last_updated
    from measured
    {% if is_incremental() %}
        left join {{ this }} as previous on measured.product_id = previous.product_id
    {% endif %}
)

select * from stamped
