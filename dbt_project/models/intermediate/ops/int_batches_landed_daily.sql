-- Rows each raw table landed per UTC day (its committed batches summed).
select
    source,
    stream,
    (committed_at at time zone 'UTC')::date as landed_date,
    sum(rows_landed) as rows_landed,
    count(*) as batches
from {{ ref('stg_loader__batches') }}
group by source, stream, (committed_at at time zone 'UTC')::date
