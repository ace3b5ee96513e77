{#
    Warns with one row per landed row of `source_relation` whose key (at
    `key_path`) is missing or not a valid `key_type`. Such rows cannot be
    identified or deduplicated, so the staging model leaves them out; this
    test is where they are counted. `lineage` names the landed columns that
    identify a row in the output (output name -> landed column; default:
    Mongo's _id and batch). Failing rows are stored (schema audit).
#}
{% test json_key_castable(model, source_relation, key_path, key_type='text', json_column='doc', lineage=none, json_as_text=false) %}
{{ config(severity='warn', store_failures=true) }}
{%- set lineage = lineage or {'document_id': '_id', 'batch_id': '_batch_id'} -%}
{%- set document = 'landed.' ~ json_column -%}
{%- if json_as_text -%}
    {%- set document = cast_or_null(document, 'jsonb') -%}
{%- endif %}
select
    {%- for name, landed_column in lineage.items() %}
    landed.{{ landed_column }} as {{ name }},
    {%- endfor %}
    {{ json_text(document, key_path) }} as landed_key
from {{ source_relation }} as landed
where
    {{ json_value(document, key_path, key_type) }} is null
    {{ landed_since_tested('landed') }}
{% endtest %}
