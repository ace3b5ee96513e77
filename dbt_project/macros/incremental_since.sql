{#
    The filter for an incremental model reading append-only raw rows: rows
    loaded after the target's newest `loaded_at`, minus the lookback window
    (var incremental_lookback_hours). On a full build it renders nothing.
#}
{% macro incremental_since(source_column, target_column='loaded_at') -%}
    {%- if is_incremental() %}
    where {{ source_column }} > (
        select coalesce(max({{ target_column }}), '-infinity'::timestamptz)
        from {{ this }}
    ) - interval '{{ var("incremental_lookback_hours") }} hours'
    {%- endif %}
{%- endmacro %}
