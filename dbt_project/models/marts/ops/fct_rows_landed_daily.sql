-- Rows landed, rejected and quarantined per source, stream and UTC day. Landed
-- and rejected are per raw table (loader.*); quarantined is per staging model
-- (its rows held out by a domain rule), attributed to its source by its name.
with

landed as (
    select * from {{ ref('int_batches_landed_daily') }}
),

rejected as (
    select
        source,
        stream,
        (rejected_at at time zone 'UTC')::date as landed_date,
        count(*) as rows_rejected,
        min(reason) as a_reason
    from {{ ref('stg_loader__rejects') }}
    group by source, stream, (rejected_at at time zone 'UTC')::date
),

quarantined as (
    select
        split_part(substr(q.model, 5), '__', 1) as source,
        q.model as stream,  -- noqa: RF04
        (q.quarantined_at at time zone 'UTC')::date as landed_date,
        count(distinct q.row_hash) as rows_quarantined
    from {{ quarantine_relation() }} as q
    group by q.model, (q.quarantined_at at time zone 'UTC')::date
),

keys as (
    select
        source,
        stream,
        landed_date
    from landed
    union
    select
        source,
        stream,
        landed_date
    from rejected
    union
    select
        source,
        stream,
        landed_date
    from quarantined
)

select
    k.source,
    k.stream,
    k.landed_date,
    coalesce(l.rows_landed, 0) as rows_landed,
    coalesce(l.batches, 0) as batches,
    coalesce(r.rows_rejected, 0) as rows_rejected,
    r.a_reason as a_reject_reason,
    coalesce(q.rows_quarantined, 0) as rows_quarantined
from keys as k
left join landed as l
    on k.source = l.source and k.stream = l.stream and k.landed_date = l.landed_date
left join rejected as r
    on k.source = r.source and k.stream = r.stream and k.landed_date = r.landed_date
left join quarantined as q
    on k.source = q.source and k.stream = q.stream and k.landed_date = q.landed_date
