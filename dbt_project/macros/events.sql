{#
    The events models run on two adapters: the PostgreSQL warehouse
    (from raw_events.*) and ClickHouse (from the event tables in place). The
    SQL of the models is shared; what differs between the adapters lives in
    the dispatched macros below.
#}

{#
    The first day an incremental events model rebuilds, as a SQL date
    expression, or none on a full build (or, on the warehouse, when the
    model is still empty). The models rebuild whole days: from this day on,
    every day in the source replaces the model's rows for that day.

    The window starts `lookback` days (var('events_lookback_days'), the
    loader's EVENTS_LOOKBACK_DAYS, at least 1) before the earlier of:
    - the day after the latest day the model holds (its `anchor_column`), so
      days landed since the last successful build are never skipped (several
      days landed at once, or a build that failed);
    - var('logical_date') when it is set (make run; `make dbt ARGS="build
      --vars '{logical_date: 2026-10-03}'"` to rebuild an older day);
    - the earliest day a reconciliation relanded since the last build
      (events_relanded_since), on the warehouse.
    The lookback completes the previous day (late events, which the loader
    relands within the same window, and its last 15-minute slice).

    The filter it starts is served by the raw table's index (PostgreSQL) or
    prunes partitions (ClickHouse) instead of scanning history. A model
    computes it once and passes it to each of its reads (events_window).
#}
{% macro events_window_start(anchor_column='event_date') -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(adapter.dispatch('events_window_start')(anchor_column)) }}
{%- endmacro %}

{# Computed when the model runs (a query) and rendered as a date literal. #}
{% macro default__events_window_start(anchor_column) -%}
    {%- set lookback = [var('events_lookback_days') | int, 1] | max -%}
    {%- set found = run_query(
        'select max(' ~ anchor_column ~ ') from ' ~ this
    ).columns[0].values()[0] -%}
    {%- if found is none or (found | string) == '1970-01-01' -%}
        {# Empty (ClickHouse's max() of nothing is the epoch): read everything. #}
        {{ return(none) }}
    {%- endif -%}
    {%- set datetime = modules.datetime -%}
    {%- set first = datetime.date.fromisoformat(found | string) + datetime.timedelta(days=1) -%}
    {%- if run_logical_date() -%}
        {%- set logical = datetime.date.fromisoformat(run_logical_date()) -%}
        {%- set first = [first, logical] | min -%}
    {%- endif -%}
    {%- set relanded = events_relanded_since() -%}
    {%- if relanded -%}
        {%- set first = [first, datetime.date.fromisoformat(relanded)] | min -%}
    {%- endif -%}
    {{ return(date_literal((first - datetime.timedelta(days=lookback)).isoformat())) }}
{%- endmacro %}

{#
    On ClickHouse the same day as a scalar subquery of the model's own query:
    ClickHouse computes it before it reads, so it prunes partitions as a
    literal does, and the model saves a query of its own (a query's fixed
    cost is most of what an incremental model costs there). An empty model
    (max() of nothing is the epoch) gives the epoch: every day, and
    events_model_empty lifts the upper bounds, as none does on the warehouse.
    No relanded days: the models read the events in place.
#}
{% macro clickhouse__events_window_start(anchor_column) -%}
    {%- set lookback = [var('events_lookback_days') | int, 1] | max -%}
    {%- set next_day = 'max(' ~ anchor_column ~ ') + 1' -%}
    {%- if run_logical_date() -%}
        {%- set next_day = 'least(' ~ next_day ~ ', ' ~ date_literal(run_logical_date()) ~ ')' -%}
    {%- endif -%}
    {%- set start -%}
        (
            select if(max({{ anchor_column }}) = toDate(0), toDate(0), {{ next_day }} - {{ lookback }})
            from {{ this }}
        )
    {%- endset -%}
    {{ return(start) }}
{%- endmacro %}

{#
    The condition that the model was empty when the run began, given its
    events_window_start, or none where an empty model has no start (the
    warehouse): on ClickHouse the start is the epoch then, and a read of an
    empty model's window takes every day, without the upper bounds.
#}
{% macro events_model_empty(start) -%}
    {{ return(adapter.dispatch('events_model_empty')(start)) }}
{%- endmacro %}

{% macro default__events_model_empty(start) -%}
    {{ return(none) }}
{%- endmacro %}

{% macro clickhouse__events_model_empty(start) -%}
    {{ return(start ~ ' = toDate(0)') }}
{%- endmacro %}

{#
    The earliest events day a reconciliation relanded (loader.reconciliations)
    since the last build whose tests passed (tested_before), or in the last
    week when that is not known (a weekly full check); none if there is none.
    Only on the warehouse: on ClickHouse the models read the events in place.
#}
{% macro events_relanded_since() -%}
    {%- if target.type != 'postgres' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set control = adapter.get_relation(this.database, 'loader', 'reconciliations') -%}
    {%- if control is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set since = tested_before() -%}
    {%- set after = "'" ~ since ~ "'::timestamptz" if since else "now() - interval '7 days'" -%}
    {%- set found = run_query(
        "select min((d ->> 'partition')::date) from " ~ control ~ " as r,"
        ~ " jsonb_array_elements(r.differences) as d"
        ~ " where r.source = 'events' and d ->> 'action' = 'relanded'"
        ~ " and r.finished_at >= " ~ after
    ).columns[0].values()[0] -%}
    {{ return(none if found is none else found | string) }}
{%- endmacro %}

{#
    The filter of an incremental events model's reads: the rebuilt days from
    `start` (the model's events_window_start, computed once at the top of the
    model: on the warehouse each computation is a query), up to the logical
    day when one is given and `up_to_logical_date` (unless the model was
    empty: events_model_empty). Renders a condition that is true on a full
    build (`start` none).
#}
{% macro events_window(start, date_column='event_date', up_to_logical_date=true) -%}
    {%- if start is none -%}
        1 = 1
    {%- else -%}
        {{ date_column }} >= {{ start }}
        {%- if run_logical_date() and up_to_logical_date %}
            {%- set empty = events_model_empty(start) %}
            and ({{ date_column }} <= {{ date_literal(run_logical_date()) }}
            {%- if empty %} or {{ empty }}{% endif %})
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#
    The unique_key of the models rebuilt a day at a time: event_date, whose
    rows delete+insert replaces on PostgreSQL. None on ClickHouse, where the
    day is the table's partition and insert_overwrite swaps the rebuilt
    partitions in (a strategy without a key).
#}
{% macro events_day_key() -%}
    {{ return(none if target.type == 'clickhouse' else 'event_date') }}
{%- endmacro %}

{% macro date_literal(iso_date) -%}
    cast('{{ iso_date }}' as date)
{%- endmacro %}

{#
    The UTC day of an event. On the warehouse, the loader's `_event_date`
    column: it holds exactly the UTC date of `time` (the loader lands a day
    by that rule) and is indexed, so reads of a few days never scan history.
#}
{% macro event_date_of(time_column) -%}
    {{ return(adapter.dispatch('event_date_of')(time_column)) }}
{%- endmacro %}

{% macro default__event_date_of(time_column) -%}
    {{ utc_date(time_column) }}
{%- endmacro %}

{% macro postgres__event_date_of(time_column) -%}
    _event_date
{%- endmacro %}

{% macro clickhouse__event_date_of(time_column) -%}
    {{ utc_date(time_column) }}
{%- endmacro %}

{# The UTC date of a timestamp, whatever the session's time zone. #}
{% macro utc_date(time_column) -%}
    {{ return(adapter.dispatch('utc_date')(time_column)) }}
{%- endmacro %}

{% macro default__utc_date(time_column) -%}
    cast(timezone('UTC', {{ time_column }}) as date)
{%- endmacro %}

{% macro clickhouse__utc_date(time_column) -%}
    toDate({{ time_column }}, 'UTC')
{%- endmacro %}

{#
    Whole seconds since 1970-01-01 00:00 UTC, as a bigint, fractions cut off
    (as ClickHouse's toUnixTimestamp of a DateTime64): slice arithmetic (a
    slice is a multiple of 900 s) the same way on every adapter.
#}
{% macro epoch_seconds(time_column) -%}
    {{ return(adapter.dispatch('epoch_seconds')(time_column)) }}
{%- endmacro %}

{% macro default__epoch_seconds(time_column) -%}
    cast(floor(extract(epoch from {{ time_column }})) as bigint)
{%- endmacro %}

{% macro clickhouse__epoch_seconds(time_column) -%}
    toInt64(toUnixTimestamp({{ time_column }}))
{%- endmacro %}

{#
    The UTC timestamp `seconds` after 1970-01-01 00:00 UTC (the inverse of
    epoch_seconds): timestamptz on PostgreSQL, DateTime('UTC') on ClickHouse.
#}
{% macro from_epoch_seconds(seconds) -%}
    {{ return(adapter.dispatch('from_epoch_seconds')(seconds)) }}
{%- endmacro %}

{% macro default__from_epoch_seconds(seconds) -%}
    to_timestamp({{ seconds }})
{%- endmacro %}

{% macro clickhouse__from_epoch_seconds(seconds) -%}
    toDateTime({{ seconds }}, 'UTC')
{%- endmacro %}

{#
    The continuous quantile p (0..1) of `expression` in a group, linearly
    interpolated between the closest ranks (the "inclusive" definition:
    numpy's default, Excel's PERCENTILE.INC).
#}
{% macro quantile_cont(expression, p) -%}
    {{ return(adapter.dispatch('quantile_cont')(expression, p)) }}
{%- endmacro %}

{% macro default__quantile_cont(expression, p) -%}
    percentile_cont({{ p }}) within group (order by {{ expression }})
{%- endmacro %}

{% macro clickhouse__quantile_cont(expression, p) -%}
    quantileExactInclusive({{ p }})(toFloat64({{ expression }}))
{%- endmacro %}

{#
    A relation of the integers first..last, one column `n`, for spines and
    offsets: a union of literals, but on ClickHouse the numbers() table
    function, where a union of 96 selects (a day's slices) took ClickHouse
    longer to plan than the rest of the model to run.
#}
{% macro integers(first, last) -%}
    {{ return(adapter.dispatch('integers')(first, last)) }}
{%- endmacro %}

{% macro default__integers(first, last) -%}
    {%- for k in range(first, last + 1) %}
    select {{ k }} as n{% if not loop.last %} union all{% endif %}
    {%- endfor %}
{%- endmacro %}

{#
    The type is the one ClickHouse gives a union of those literals (the
    smallest unsigned type that holds them), so a model's columns keep their
    types whichever way the integers are made.
#}
{% macro clickhouse__integers(first, last) -%}
    {%- if first < 0 -%}
        {{ return(default__integers(first, last)) }}
    {%- endif -%}
    {%- set bits = namespace(n=8) -%}
    {%- for b in [64, 32, 16, 8] if last < 2 ** b -%}
        {%- set bits.n = b -%}
    {%- endfor -%}
    select toUInt{{ bits.n }}(number + {{ first }}) as n from numbers({{ last - first + 1 }})
{%- endmacro %}

{# Integer division of non-negative integers (ClickHouse's `/` is a float division). #}
{% macro int_div(dividend, divisor) -%}
    {{ return(adapter.dispatch('int_div')(dividend, divisor)) }}
{%- endmacro %}

{% macro default__int_div(dividend, divisor) -%}
    cast(floor(({{ dividend }}) / ({{ divisor }})) as {{ dbt.type_bigint() }})
{%- endmacro %}

{% macro postgres__int_div(dividend, divisor) -%}
    (cast({{ dividend }} as bigint) / cast({{ divisor }} as bigint))
{%- endmacro %}

{% macro clickhouse__int_div(dividend, divisor) -%}
    intDiv({{ dividend }}, {{ divisor }})
{%- endmacro %}
