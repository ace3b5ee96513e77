{#
    A dimension that only ever adds new keys (the partner's d_city and d_item):
    each key with the name it was first seen with in `relation`; on an
    incremental run, only keys the dimension does not have yet.
#}
{% macro new_keys_only(relation, key_column, name_column, seen_order) -%}
with

first_seen as (
    {{ deduplicate(relation, key_column, seen_order) }}
),

new_keys as (
    select
        {{ key_column }},
        {{ name_column }}
    from first_seen
    {% if is_incremental() %}
        where {{ key_column }} not in (select known.{{ key_column }} from {{ this }} as known)
    {% endif %}
)

select * from new_keys
{%- endmacro %}
