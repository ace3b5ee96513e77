{#
    incremental_since's filter for a snapshot of an incremental staging model
    (check strategy, hard deletes ignored): only rows of batches newer than
    the newest batch the snapshot holds, so a day's run compares the day's
    changes, not every current row. Sound because a key missing from the query is left as it is
    when hard deletes are ignored, and a version is only ever written from a
    batch the snapshot has read. A batch whose rows change nothing adds no
    version, so it may be read again next run: harmless. Only on a daily
    build (snapshot_reads_new_only): the weekly full check, dbt by hand, CI
    and Airflow compare every row, which also records what a changed staging
    model (rebuilt with --full-refresh, its batch ids unchanged) now says.
#}
{% macro snapshot_since(column='batch_id') -%}
    {%- if execute -%}
        {%- if adapter.get_hard_deletes_behavior(config) != 'ignore' -%}
            {{ exceptions.raise_compiler_error(
                model.name ~ ": snapshot_since needs hard_deletes: ignore (a key missing "
                ~ "from a filtered query would read as deleted)") }}
        {%- endif -%}
        {%- if snapshot_reads_new_only() %}
    where {{ column }} > (select coalesce(max({{ column }}), 0) from {{ this }})
        {%- endif -%}
    {%- endif %}
{%- endmacro %}

{#
    Whether this snapshot reads only new batches: on a daily build (tested_before,
    the last passing build's record: make run's daily builds) of a snapshot
    whose table exists.
#}
{% macro snapshot_reads_new_only() -%}
    {{ return(execute and tested_before() is not none
              and adapter.get_relation(this.database, this.schema, this.identifier) is not none) }}
{%- endmacro %}

{#
    dbt's snapshot_staging_table, for a snapshot that reads only new batches
    (snapshot_since): the snapshot's current versions are compared only for
    the keys the query returns, not read whole. Sound for the same reason as
    the filter (with hard deletes ignored, a key the query does not return is
    left as it is), and with lookup_indexes' index on the unique key it reads
    the day's keys, not every order. Every other snapshot is left to dbt's own
    macro, which this wraps (the root project's macro of the same name wins).
#}
{% macro snapshot_staging_table(strategy, source_sql, target_relation) -%}
    {%- set current = target_relation -%}
    {%- set key = strategy.unique_key -%}
    {%- if strategy.hard_deletes == 'ignore' and key is string
          and 'macro.store_analytics.snapshot_since' in model.depends_on.macros
          and snapshot_reads_new_only() -%}
        {%- set current -%}
            (
                select * from {{ target_relation }}
                where {{ key }} in (select {{ key }} from ({{ source_sql }}) as changed)
            ) as current_of_changed
        {%- endset -%}
    {%- endif -%}
    {{ adapter.dispatch('snapshot_staging_table', 'dbt')(strategy, source_sql, current) }}
{%- endmacro %}
