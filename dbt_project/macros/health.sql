{#
    A source table, or an empty relation of the given columns while the table
    does not exist yet. The platform's own tables (loader.*, raw_ops.*) are
    made by the first load and the first kept dbt invocation; a build on a
    warehouse that has neither (a new one, a test) still builds the ops
    models, empty. (make run lands before it builds, so its first build
    already reads the tables.)
#}
{% macro source_or_empty(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if execute and adapter.get_relation(
            database=relation.database, schema=relation.schema,
            identifier=relation.identifier) is none -%}
        {%- set nulls = [] -%}
        {%- for name, type in columns.items() -%}
            {%- do nulls.append('cast(null as ' ~ type ~ ') as ' ~ name) -%}
        {%- endfor -%}
        {{ return('(select ' ~ nulls | join(', ') ~ ' where false) as ' ~ table_name) }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{#
    The interquartile-range band of a value against its history: below
    q25 - multiplier * IQR or above q75 + multiplier * IQR is an anomaly.
    `side` is 'lower' or 'upper'. The feed's 15-minute anomalies and the
    platform's daily volume anomalies share it.
#}
{% macro iqr_bound(side, q25, q75, multiplier) -%}
    {%- set iqr = '(' ~ q75 ~ ' - ' ~ q25 ~ ')' -%}
    {%- if side == 'lower' -%}
        {{ return(q25 ~ ' - ' ~ multiplier ~ ' * ' ~ iqr) }}
    {%- elif side == 'upper' -%}
        {{ return(q75 ~ ' + ' ~ multiplier ~ ' * ' ~ iqr) }}
    {%- endif -%}
    {{ exceptions.raise_compiler_error("iqr_bound: side is 'lower' or 'upper', not " ~ side) }}
{%- endmacro %}
