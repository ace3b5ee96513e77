{#
    For the tests that read a raw table itself (the *_key_castable tests:
    landed rows staging could not key): only rows landed since the last
    build that passed, as `and <alias>._loaded_at >= ...`; nothing without
    that record (every landed row).
#}
{% macro landed_since_tested(alias) -%}
    {%- if execute and not flags.FULL_REFRESH and tested_before() -%}
        and {{ alias }}._loaded_at >= '{{ tested_before() }}'
    {%- endif -%}
{%- endmacro %}
