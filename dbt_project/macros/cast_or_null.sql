{#
    `expression` (text) cast to `data_type`, or null when it is not a valid
    value of that type: a bad value never errors the query.

    Postgres: pg_input_is_valid(text, type), which exists from PostgreSQL 16
    on (it runs the type's input function without raising). PostgreSQL also
    reads the words now, today, yesterday, tomorrow, epoch and infinity as
    dates and times, and NaN/Infinity as numbers: those are not data (and
    'yesterday' would change with the day of the run), so a date or time must
    start with a digit and a number must not be NaN or infinite. Note that a
    literal written in the SQL itself can still be folded, and fail, when the
    query is planned; values read from tables cannot.

    The default is TRY_CAST (Snowflake, Databricks, DuckDB, SQL Server, Trino);
    BigQuery (SAFE_CAST) or ClickHouse (accurateCastOrNull) add their own.
#}
{% macro cast_or_null(expression, data_type) -%}
    {{ return(adapter.dispatch('cast_or_null')(expression, data_type)) }}
{%- endmacro %}

{% macro default__cast_or_null(expression, data_type) -%}
    try_cast({{ expression }} as {{ data_type }})
{%- endmacro %}

{% macro postgres__cast_or_null(expression, data_type) -%}
    {%- set kind = data_type | lower -%}
    {%- if kind.startswith(('date', 'time')) -%}
        {%- set readable = expression ~ " ~ '^[[:space:]]*[0-9]'" -%}
    {%- elif kind.startswith(('numeric', 'decimal', 'real', 'double', 'float')) -%}
        {%- set readable = expression ~ " !~* 'nan|inf'" -%}
    {%- else -%}
        {%- set readable = 'true' -%}
    {%- endif -%}
    case
        when pg_input_is_valid({{ expression }}, '{{ data_type }}') and {{ readable }}
            then cast({{ expression }} as {{ data_type }})
    end
{%- endmacro %}
