{#
    Indexes on the columns a daily run looks rows up by, so that its work on
    an incremental table (or a snapshot) follows the new rows, not the
    table's size:
    - the unique_key: delete+insert deletes the new rows' keys, and
      deduplicate_incremental looks up the kept row of each new key;
    - meta.new_rows' column (loaded_at, event_date): the daily tests' window;
    - batch_id, where the model reads new batches (incremental_since,
      snapshot_since): the max() they start from.
    A post-hook on every incremental model and snapshot (dbt_project.yml), on
    PostgreSQL only (ClickHouse's tables are ordered and partitioned
    instead). It creates the ones the table does not have yet, by columns,
    so tables built before these indexes existed get them without a full
    refresh. PostgreSQL names them: on a full refresh the old table, renamed
    to __dbt_backup until the commit, still holds the old names.
#}
{% macro lookup_indexes() -%}
    {%- if not execute or target.type != 'postgres' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set kind = model.resource_type | string -%}
    {%- if not (kind.endswith('snapshot') or config.get('materialized') == 'incremental') -%}
        {{ return('') }}
    {%- endif -%}
    {%- set wanted = [] -%}
    {%- set key = config.get('unique_key') -%}
    {%- if key -%}
        {%- do wanted.append(key if key is not string else [key]) -%}
    {%- endif -%}
    {%- set new_rows = (config.get('meta') or {}).get('new_rows') or {} -%}
    {%- if new_rows.get('column') -%}
        {%- do wanted.append([new_rows['column']]) -%}
    {%- endif -%}
    {%- set reads_batches = model.depends_on.macros | select('in', [
        'macro.store_analytics.incremental_since', 'macro.store_analytics.snapshot_since'
    ]) | list -%}
    {%- if reads_batches -%}
        {%- do wanted.append(['batch_id']) -%}
    {%- endif -%}
    {%- set existing_sql -%}
        select string_agg(a.attname, ',' order by k.n)
        from pg_index as i
        cross join lateral unnest(i.indkey::int2 []) with ordinality as k (attnum, n)
        inner join pg_attribute as a on a.attrelid = i.indrelid and a.attnum = k.attnum
        where i.indrelid = '{{ adapter.quote(this.schema) }}.{{ adapter.quote(this.identifier) }}'::regclass
        group by i.indexrelid
    {%- endset -%}
    {%- set existing = run_query(existing_sql).columns[0].values() | list -%}
    {%- set seen = [] -%}
    {%- for columns in wanted if (columns | join(',')) not in existing + seen -%}
        {%- do seen.append(columns | join(',')) %}
    create index on {{ this }} ({{ columns | join(', ') }});
    {%- endfor %}
{%- endmacro %}
