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
    instead). `create index if not exists` under a fixed name, so it also
    indexes tables built before these indexes existed, without a full
    refresh, and costs one catalog lookup once they do.
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
    {%- set seen = [] -%}
    {%- for columns in wanted if columns not in seen -%}
        {%- do seen.append(columns) -%}
        {%- set name = this.identifier ~ '__' ~ columns | join('__') ~ '_idx' -%}
        {%- if name | length > 63 -%}
            {%- set name = this.identifier[:40] ~ '__' ~ local_md5(name)[:16] ~ '_idx' -%}
        {%- endif %}
    create index if not exists {{ adapter.quote(name) }} on {{ this }} ({{ columns | join(', ') }});
    {%- endfor %}
{%- endmacro %}
