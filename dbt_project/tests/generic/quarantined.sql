{#
    Warns with the rows of the tested model that its rules held out of it
    (macros/quarantine.sql) since the last build that passed, or all of them
    when there is no such record: one result per row and rule. Reads the
    quarantine, not the model (the rows are no longer in it).
#}
{% test quarantined(model) %}
{{ config(severity='warn') }}
select rule, row_key, row, quarantined_at
from {{ quarantine_relation() }}
where model = '{{ quarantined_model_name() }}'
{%- if tested_before() %}
    and quarantined_at >= '{{ tested_before() }}'
{%- endif %}
{% endtest %}

