{#
    Warns with one row per (kept row, field) whose value was present in the
    landed document but could not be read as its type (or, where the model
    keeps only known values, was not one of them), so staging holds null
    there (see macros/json_fields.sql). `fields` maps each model column read
    from the document to its JSON path. `lineage` maps the model's lineage
    columns to the landed row's columns, to find the landed row of each kept
    row (default: Mongo's document_id and batch_id). A document stored as
    text (`json_as_text`) is parsed safely. Failing rows are stored (schema
    audit) so bad values stay visible after the run.
#}
{% test json_castable(model, source_relation, fields, json_column='doc', lineage=none, json_as_text=false) %}
{{ config(severity='warn', store_failures=true) }}
{%- set lineage = lineage or {'document_id': '_id', 'batch_id': '_batch_id'} -%}
{%- set document = 'landed.' ~ json_column -%}
{%- if json_as_text -%}
    {%- set document = cast_or_null(document, 'jsonb') -%}
{%- endif -%}
{%- for column, path in fields.items() %}
select
    {%- for model_column in lineage %}
    model.{{ model_column }},
    {%- endfor %}
    '{{ column }}' as column_name,
    {{ json_text(document, path) }} as landed_value
from (select * from {{ model }}) as model
inner join {{ source_relation }} as landed
    on
    {%- for model_column, landed_column in lineage.items() %}
        {% if not loop.first %}and {% endif %}model.{{ model_column }} = landed.{{ landed_column }}
    {%- endfor %}
where
    model.{{ column }} is null
    and {{ json_present(document, path) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}
