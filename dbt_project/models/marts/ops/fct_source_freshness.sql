-- Tagged daily_sql: its SQL carries a var (a threshold), recreated every build.
{{ config(tags=['daily_sql']) }}

-- Per raw table: when it last landed rows, how long ago that was when this
-- model was built, and what the last `dbt source freshness` said of it. Stale:
-- nothing landed for var('health_stale_after_hours') (HEALTH_STALE_AFTER_HOURS).
with

landed as (
    select
        source,
        stream,
        max(committed_at) filter (where rows_landed > 0) as last_landed_at,
        max(committed_at) as last_batch_at
    from {{ ref('stg_loader__batches') }}
    group by source, stream
),

checked as (
    select distinct on (f.source_name, f.table_name)
        f.source_name,
        f.table_name,
        f.status,
        f.snapshotted_at
    from {{ ref('stg_ops__dbt_source_freshness') }} as f
    order by f.source_name asc, f.table_name asc, f.snapshotted_at desc
)

select
    l.source,
    l.stream,
    l.last_landed_at,
    l.last_batch_at,
    extract(epoch from now() - l.last_landed_at) / 3600.0 as hours_since_landed,
    coalesce(
        l.last_landed_at
        < now() - make_interval(secs => {{ var('health_stale_after_hours') }} * 3600),
        true
    ) as is_stale,
    c.status as freshness_status,
    c.snapshotted_at as freshness_checked_at
from landed as l
left join checked as c
    on l.source = c.source_name and l.stream = c.table_name
