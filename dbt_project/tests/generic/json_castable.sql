{#
    Warns with one row per (kept row, field) whose value was present in the
    landed document but could not be read as its type, so staging holds null
    there (see macros/json_fields.sql). `fields` maps each model column read
    from the document to its JSON path; the model's document_id and batch_id
    find the landed row in `source_relation`. Failing rows are stored (schema
    audit) so bad values stay visible after the run.
#}
{% test json_castable(model, source_relation, fields, json_column='doc') %}
{{ config(severity='warn', store_failures=true) }}
{%- for column, path in fields.items() %}
select
    model.document_id,
    '{{ column }}' as column_name,
    {{ json_text('landed.' ~ json_column, path) }} as landed_value
from {{ model }} as model
inner join {{ source_relation }} as landed
    on
        model.document_id = landed._id
        and model.batch_id = landed._batch_id
where
    model.{{ column }} is null
    and {{ json_present('landed.' ~ json_column, path) }}
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}
