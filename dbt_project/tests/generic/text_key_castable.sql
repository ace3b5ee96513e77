{#
    Warns with one row per landed row of `source_relation` (text columns)
    whose key, or version time, is missing or unreadable. Such a row cannot
    be identified, or ranked among its key's versions, so the staging model
    leaves it out; this test is where it is counted. Failing rows are stored
    (schema audit). With `op_column`, a tombstone (a delete or truncate,
    which carries only its key) needs no version time.
#}
{% test text_key_castable(model, source_relation, key_column, key_type='bigint', version_column=none, op_column=none) %}
{{ config(severity='warn', store_failures=true) }}
select
    landed._batch_id as batch_id,
    landed.{{ key_column }} as landed_key,
    {%- if version_column %}
    landed.{{ version_column }} as landed_version
    {%- else %}
    null as landed_version
    {%- endif %}
from {{ source_relation }} as landed
where
    (
        {{ cast_or_null('landed.' ~ key_column, key_type) }} is null
        {%- if version_column %}
        or (
            {{ cast_or_null('landed.' ~ version_column, 'timestamptz') }} is null
            {%- if op_column %}
            and not {{ is_tombstone('landed.' ~ op_column) }}
            {%- endif %}
        )
        {%- endif %}
    )
    {{ landed_since_tested('landed') }}
{% endtest %}
