{{ config(materialized='incremental', unique_key='product_id') }}

-- Review measures per product. The measures are cheap to recompute from the
-- moderation queue; what is incremental is the write: only products whose
-- measures are new or changed are merged, so last_updated is the time the
-- row last changed in the mart (as the mart is specified), not the last run.

with

reviews as (
    select * from {{ ref('stg_mongo__moderation_queue') }}
),

-- A review without a readable product_id cannot be attributed to a product:
-- it is left out here (stg_mongo__moderation_queue's warn tests count it).
attributed as (
    select * from reviews
    where product_id is not null
),

measured as (
    select
        product_id,
        count(*)::integer as total_reviews,
        round(avg(rating)::numeric, 2) as avg_rating,
        round(
            sum(case when moderation_status = 'approved' then 1 else 0 end)::numeric
            / count(*),
            4
        ) as approved_reviews_ratio,
        sum(flags_count)::integer as total_flags
    from attributed
    group by product_id
),

changed as (
    select
        measured.*,
        current_timestamp as last_updated
    from measured
    {% if is_incremental() %}
        left join {{ this }} as previous
            on measured.product_id = previous.product_id
        where
            previous.product_id is null
            or (
                measured.total_reviews, measured.avg_rating,
                measured.approved_reviews_ratio, measured.total_flags
            )
            is distinct from
            (
                previous.total_reviews, previous.avg_rating,
                previous.approved_reviews_ratio, previous.total_flags
            )
    {% endif %}
)

select * from changed
