{{ config(materialized='incremental', unique_key=events_day_key()) }}

-- The alert rule, per 15-minute slice and metric: the bounds are
-- Q25 - a * IQR and Q75 + a * IQR of the metric's previous n slices
-- (n = var('anomaly_window_slices'), a = var('anomaly_iqr_multiplier')),
-- and the slice is an anomaly when its value falls outside them. A slice
-- without n previous slices (the start of history) has no bounds and is
-- never flagged. Not smoothed: the value and the bounds are the raw ones,
-- but for the range a metric can take: a count's lower bound is at least 0,
-- and a ratio's (ctr) bounds are within 0 .. 1 (which flags nothing more or
-- less, and keeps a band from reading "-500 views").

{% set n = var('anomaly_window_slices') | int %}
{% set a = var('anomaly_iqr_multiplier') %}
{% if n < 2 or n > 96 %}
    {{ exceptions.raise_compiler_error(
        "var anomaly_window_slices must be between 2 and 96, got " ~ n) }}
{% endif %}
{% set window_start = events_window_start() %}

with

slices as (
    select
        event_date,
        slice_no,
        slice_start,
        metric,
        value
    from {{ ref('int_events_slice_metrics') }}
),

current_slices as (
    select * from slices
    where {{ events_window(window_start) }}
),

-- The earlier slices a window can reach: at most a day before the first.
history as (
    select
        metric,
        slice_no,
        value
    from slices
    {% if window_start is not none %}
        {% set model_empty = events_model_empty(window_start) %}
        where (
            event_date >= {{ dbt.dateadd('day', -1, window_start) }}
            {% if model_empty %}or {{ model_empty }}{% endif %}
        )
    {% endif %}
),

offsets as (
    {{ integers(1, n) }}
),

previous_slice_numbers as (
    select
        c.metric as metric,
        c.slice_no as slice_no,
        c.slice_no - o.n as previous_slice_no
    from current_slices as c
    cross join offsets as o
),

windows as (
    select
        p.metric as metric,
        p.slice_no as slice_no,
        count(h.value) as previous_values,
        {{ quantile_cont('h.value', 0.25) }} as q25,
        {{ quantile_cont('h.value', 0.75) }} as q75
    from previous_slice_numbers as p
    inner join history as h
        on p.metric = h.metric and p.previous_slice_no = h.slice_no
    group by p.metric, p.slice_no
),

bounded as (
    select
        c.event_date as event_date,
        c.slice_start as slice_start,
        c.metric as metric,
        c.value as value,
        case
            when w.previous_values = {{ n }} then {{ iqr_bound('lower', 'w.q25', 'w.q75', a) }}
        end as lower_bound,
        case
            when w.previous_values = {{ n }} then {{ iqr_bound('upper', 'w.q25', 'w.q75', a) }}
        end as upper_bound
    from current_slices as c
    left join windows as w
        on c.metric = w.metric and c.slice_no = w.slice_no
)

select
    event_date,
    slice_start,
    metric,
    value,
    case when lower_bound is not null then greatest(lower_bound, 0) end as lower_bound,
    case
        when upper_bound is not null and metric in ('ctr') then least(upper_bound, 1)
        else upper_bound
    end as upper_bound,
    coalesce(value < lower_bound or value > upper_bound, false) as is_anomaly
from bounded
