{#
    Warns with one row per landed row of `source_relation` whose key (at
    `key_path`) is missing or not a valid `key_type`. Such rows cannot be
    identified or deduplicated, so the staging model leaves them out; this
    test is where they are counted. Failing rows are stored (schema audit).
#}
{% test json_key_castable(model, source_relation, key_path, key_type='text', json_column='doc') %}
{{ config(severity='warn', store_failures=true) }}
select
    landed._id as document_id,
    landed._batch_id as batch_id,
    {{ json_text('landed.' ~ json_column, key_path) }} as landed_key
from {{ source_relation }} as landed
where {{ json_value('landed.' ~ json_column, key_path, key_type) }} is null
{% endtest %}
