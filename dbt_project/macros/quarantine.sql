-- noqa: disable=LT02
{# sqlfluff renders variants of the Jinja loops and flags their indentation (LT02). #}
{#
    Quarantine: a staging row that breaks a domain rule (a range, a list of
    accepted values) is kept out of its model, and so out of every mart,
    and written to audit.quarantined_rows with the rule it broke and its key.
    It never fails the build; the warn test `quarantined` counts the rows.

    A staging model states its rules once, in its config:

        meta:
          quarantine:
            key: order_id                      # the column naming the row
            rules:                             # name: SQL true for a good row
              total_amount_not_negative: total_amount >= 0

    A null value passes every rule: an unreadable or missing value is the
    castable and not_null tests' business, not the quarantine's.

    quarantine_rows() is a post-hook on every staging model (dbt_project.yml)
    and does nothing for a model without rules. Inside the model's
    transaction it copies the rows that break a rule to the quarantine, then
    deletes them from the model: readers never see them, and a build that
    fails leaves both as they were. It looks at the rows this build wrote (by
    their xmin, the model's transaction), so a row an incremental model reads
    again (its batch was the newest, and went with it) is held out again. Rules therefore need a table or an incremental model (a
    view cannot be deleted from): a model with rules is never a view.

    Which row a key keeps is the model's own logic (its latest version, or
    its first registration); the rules then judge that row. A key whose
    kept row breaks a rule is out of the model until a row that passes
    replaces it. Known gap: the dedup of a later build no longer sees a
    held-out row, so a key's later row can win where a full refresh keeps
    (and holds out) the earlier one; and an incremental mart merging keys
    keeps the key's last good row.

    PostgreSQL only: on ClickHouse the events models read the source tables
    in place, and a rule's values count in no metric there.
#}
{% macro quarantine_relation() -%}
    {#- target.get: ClickHouse's targets name no database. #}
    {{ return(api.Relation.create(
        database=target.get('database'),
        schema=generate_schema_name('audit', none),
        identifier='quarantined_rows',
        type='table')) }}
{%- endmacro %}

{#
    on-run-start (with the schemas, under their lock): the quarantine's
    table. One row per (model, rule, row): the same row quarantined again (a
    full refresh, a rebuilt day) is not counted twice, and keeps the time it
    was first held out.
#}
{% macro create_quarantine_relation() -%}
    create table if not exists {{ quarantine_relation() }} (
        model text not null,
        rule text not null,
        row_key text,
        row jsonb not null,
        quarantined_at timestamptz not null default now(),
        row_hash text generated always as (md5(row::text)) stored,
        unique (model, rule, row_hash)
    );
    comment on table {{ quarantine_relation() }} is
    'Staging rows held out of the marts: each broke a domain rule its model states (meta.quarantine). Written by the staging models'' quarantine_rows post-hook.';
{%- endmacro %}

{% macro quarantine_rows() -%}
    {%- if not execute or target.type != 'postgres' -%}
        {{ return('') }}
    {%- endif -%}
    {%- set spec = (config.get('meta') or {}).get('quarantine') -%}
    {%- if not spec -%}
        {{ return('') }}
    {%- endif -%}
    {%- if config.get('materialized') not in ('table', 'incremental') -%}
        {{ exceptions.raise_compiler_error(
            model.name ~ ": a model with quarantine rules must be a table or incremental model, not a "
            ~ config.get('materialized')) }}
    {%- endif -%}
    {%- set rules = spec['rules'] -%}
    {#- The rows this build wrote: their xmin is this transaction's (a table rebuilt
        whole, or an incremental model's merged rows), whatever batch or time they carry. #}
    {%- set scope = "t.xmin::text::bigint = txid_current() % 4294967296" %}
    insert into {{ quarantine_relation() }} (model, rule, row_key, row)
    select '{{ this.identifier }}', broken.rule, ({{ spec["key"] }})::text, to_jsonb(t)
    from {{ this }} as t
    cross join lateral (values
        {%- for name, passes in rules.items() %}
        ('{{ name }}', not coalesce(({{ passes }}), true)){{ ',' if not loop.last }}
        {%- endfor %}
    ) as broken (rule, yes)
    where broken.yes and ({{ scope }})
    on conflict do nothing;

    delete from {{ this }} as t
    where ({{ scope }}) and (
        {%- for passes in rules.values() %}
        not coalesce(({{ passes }}), true){{ ' or' if not loop.last }}
        {%- endfor %}
    );
{%- endmacro %}

{# The model a test is attached to (the test macro's own `model` is its relation). #}
{% macro quarantined_model_name() -%}
    {{ return(graph.nodes[model.attached_node].alias if execute and model.attached_node else '') }}
{%- endmacro %}
