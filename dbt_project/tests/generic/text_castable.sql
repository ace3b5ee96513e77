{#
    The json_castable of raw tables whose columns land as text (the order
    system's replicated tables): warns with one row per (kept row, column)
    whose landed value was present but could not be cast to the model
    column's type, so staging holds null there. `fields` maps each model
    column to the raw column it is cast from. A kept row's landed row is the
    one with its key and batch (a batch lands at most one version of a key).
    Failing rows are stored (schema audit).
#}
{% test text_castable(model, source_relation, key_column, fields, key_type='bigint') %}
{{ config(severity='warn', store_failures=true) }}
{%- for column, landed_column in fields.items() %}
select
    cast(model.{{ key_column }} as text) as row_key,
    model.batch_id,
    '{{ column }}' as column_name,
    landed.{{ landed_column }} as landed_value
from (select * from {{ model }}) as model
inner join {{ source_relation }} as landed
    on
        model.batch_id = landed._batch_id
        and model.{{ key_column }} = {{ cast_or_null('landed.' ~ key_column, key_type) }}
where
    model.{{ column }} is null
    and landed.{{ landed_column }} is not null
{% if not loop.last %}union all{% endif %}
{%- endfor %}
{% endtest %}
