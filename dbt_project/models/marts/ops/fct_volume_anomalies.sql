-- Rows landed per raw table and complete UTC day (the current day is still
-- landing), against the interquartile band of its previous n landing days
-- (n days, a times the IQR). A day without n earlier landing days has no
-- band and is never flagged. Days with batches and no rows count: a table
-- that lands nothing while its source's other tables go on is flagged here
-- (a source that stops landing altogether is a stale source). (Set here, not as vars: a view whose
-- SQL reads a var is recreated every build, a changed model only when it
-- changes.)
{% set n = 7 %}
{% set a = 1.5 %}

with

landed as (
    select * from {{ ref('int_batches_landed_daily') }}
    where landed_date < (now() at time zone 'UTC')::date
),

days as (
    select
        source,
        stream,
        landed_date,
        rows_landed,
        row_number() over (partition by source, stream order by landed_date) as day_no
    from landed
),

windows as (
    select
        d.source,
        d.stream,
        d.landed_date,
        count(h.rows_landed) as previous_days,
        {{ quantile_cont('h.rows_landed', 0.25) }} as q25,
        {{ quantile_cont('h.rows_landed', 0.75) }} as q75
    from days as d
    inner join days as h
        on
            d.source = h.source and d.stream = h.stream
            and h.day_no between d.day_no - {{ n }} and d.day_no - 1
    group by d.source, d.stream, d.landed_date
),

bounded as (
    select
        d.source,
        d.stream,
        d.landed_date,
        d.rows_landed,
        case
            when w.previous_days = {{ n }} then {{ iqr_bound('lower', 'w.q25', 'w.q75', a) }}
        end as lower_bound,
        case
            when w.previous_days = {{ n }} then {{ iqr_bound('upper', 'w.q25', 'w.q75', a) }}
        end as upper_bound
    from days as d
    left join windows as w
        on d.source = w.source and d.stream = w.stream and d.landed_date = w.landed_date
)

select
    source,
    stream,
    landed_date,
    rows_landed,
    greatest(lower_bound, 0) as lower_bound,
    upper_bound,
    coalesce(rows_landed < lower_bound or rows_landed > upper_bound, false) as is_anomaly
from bounded
