-- Per raw table: when it last landed rows, how long ago that is now (a view:
-- read when queried), and what the last `dbt source freshness` said of it.
-- Which age is stale is HEALTH_STALE_AFTER_HOURS, the alerts' setting.
with

freshness as (
    select * from {{ ref('stg_ops__dbt_source_freshness') }}
),

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
    from freshness as f
    order by f.source_name asc, f.table_name asc, f.snapshotted_at desc nulls last
)

select
    l.source,
    l.stream,
    l.last_landed_at,
    l.last_batch_at,
    extract(epoch from now() - l.last_landed_at) / 3600.0 as hours_since_landed,
    c.status as freshness_status,
    c.snapshotted_at as freshness_checked_at
from landed as l
left join checked as c
    on l.source = c.source_name and l.stream = c.table_name
