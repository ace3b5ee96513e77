{#
    Reading fields of JSON documents (schema-on-read) without ever erroring.
    `json` is a JSON column or expression, `path` a dotted key path
    ('user_id', 'details.user_id'). A field that is missing, JSON null, or not
    of the asked type reads as null; the staging models' json_castable tests
    count the values that were present but unreadable.

    Postgres reads jsonb with its operators; the defaults are SQL/JSON
    (SQL:2016: JSON_VALUE, JSON_QUERY, JSON_EXISTS with strict paths), which
    PostgreSQL 17+, Oracle, MySQL 8 and Trino understand. ClickHouse
    (JSONExtract*) would add its own clickhouse__ versions.
#}

{# The scalar at `path` cast to `data_type` (text: strings, numbers, booleans). #}
{% macro json_value(json, path, data_type='text') -%}
    {{ return(adapter.dispatch('json_value')(json, path, data_type)) }}
{%- endmacro %}

{% macro default__json_value(json, path, data_type='text') -%}
    {%- set value = "json_value(" ~ json ~ ", '" ~ _sql_json_path(path) ~ "')" -%}
    {%- if data_type == 'text' -%}
        {{ value }}
    {%- else -%}
        {{ cast_or_null(value, data_type) }}
    {%- endif -%}
{%- endmacro %}

{% macro postgres__json_value(json, path, data_type='text') -%}
    {%- if data_type == 'text' -%}
        case
            when jsonb_typeof({{ _jsonb_path(json, path) }}) in ('string', 'number', 'boolean')
                then {{ _jsonb_path(json, path, as_text=true) }}
        end
    {%- else -%}
        {{ cast_or_null(_jsonb_path(json, path, as_text=true), data_type) }}
    {%- endif -%}
{%- endmacro %}

{# The array at `path` (as JSON), or null when it is not an array. #}
{% macro json_array(json, path) -%}
    {{ return(adapter.dispatch('json_array')(json, path)) }}
{%- endmacro %}

{% macro default__json_array(json, path) -%}
    json_query({{ json }}, '{{ _sql_json_path(path) }} ? (@.type() == "array")')
{%- endmacro %}

{% macro postgres__json_array(json, path) -%}
    case
        when jsonb_typeof({{ _jsonb_path(json, path) }}) = 'array'
            then {{ _jsonb_path(json, path) }}
    end
{%- endmacro %}

{# The object at `path` (as JSON), or null when it is not an object. #}
{% macro json_object(json, path) -%}
    {{ return(adapter.dispatch('json_object')(json, path)) }}
{%- endmacro %}

{% macro default__json_object(json, path) -%}
    json_query({{ json }}, '{{ _sql_json_path(path) }} ? (@.type() == "object")')
{%- endmacro %}

{% macro postgres__json_object(json, path) -%}
    case
        when jsonb_typeof({{ _jsonb_path(json, path) }}) = 'object'
            then {{ _jsonb_path(json, path) }}
    end
{%- endmacro %}

{# The number of elements of the array at `path`; null when it is not an array. #}
{% macro json_array_length(json, path) -%}
    {{ return(adapter.dispatch('json_array_length')(json, path)) }}
{%- endmacro %}

{% macro default__json_array_length(json, path) -%}
    cast(json_value({{ json }}, '{{ _sql_json_path(path) }} ? (@.type() == "array").size()') as integer)
{%- endmacro %}

{% macro postgres__json_array_length(json, path) -%}
    jsonb_array_length({{ json_array(json, path) }})
{%- endmacro %}

{# True when the field at `path` exists and is not JSON null. #}
{% macro json_present(json, path) -%}
    {{ return(adapter.dispatch('json_present')(json, path)) }}
{%- endmacro %}

{% macro default__json_present(json, path) -%}
    json_exists({{ json }}, '{{ _sql_json_path(path) }} ? (@.type() != "null")')
{%- endmacro %}

{% macro postgres__json_present(json, path) -%}
    coalesce(jsonb_typeof({{ _jsonb_path(json, path) }}) <> 'null', false)
{%- endmacro %}

{# 'details.user_id' -> strict $."details"."user_id" (no lax unwrapping of arrays). #}
{% macro _sql_json_path(path) -%}
    strict ${% for key in path.split('.') %}."{{ key }}"{% endfor %}
{%- endmacro %}

{# 'details.user_id' -> json -> 'details' -> 'user_id' (->> for the last key as text). #}
{% macro _jsonb_path(json, path, as_text=false) -%}
    {%- set keys = path.split('.') -%}
    {%- set operators = [] -%}
    {%- for key in keys -%}
        {%- do operators.append(('->>' if (as_text and loop.last) else '->') ~ " '" ~ key ~ "'") -%}
    {%- endfor -%}
    ({{ json }} {{ operators | join(' ') }})
{%- endmacro %}

{# The field at `path` as JSON text (strings unquoted), to show a bad value as it landed. #}
{% macro json_text(json, path) -%}
    {{ return(adapter.dispatch('json_text')(json, path)) }}
{%- endmacro %}

{% macro default__json_text(json, path) -%}
    coalesce(
        json_value({{ json }}, '{{ _sql_json_path(path) }}'),
        json_query({{ json }}, '{{ _sql_json_path(path) }}' returning varchar)
    )
{%- endmacro %}

{% macro postgres__json_text(json, path) -%}
    {{ _jsonb_path(json, path, as_text=true) }}
{%- endmacro %}
