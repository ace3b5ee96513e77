{#
    One row per `unique_key` from `relation` (typed rows with the model's own
    columns), such that an incremental run keeps exactly the row a full
    refresh would keep.

    `order_columns` rank the versions of a key, most significant first; they
    must be non-null and together unique per row (the staging models end them
    with batch_id, which with the document's _id makes a version unique). keep='latest' keeps the greatest version,
    keep='first' the least.

    On an incremental run `relation` holds only the new batch, and a batch can
    carry a version that loses to the one the model already holds (the loader
    re-reads a lookback window, so a late write lands after a newer version).
    This is a union of the batch with the kept rows of its keys, deduplicated:
    a batch row stays only if it beats the kept row of its key, and then the
    best of those wins. Kept rows that still win are not rewritten, so the
    delete+insert touches only keys whose winner changed. (A batch whose rows
    all lose does not raise the model's max batch_id, so incremental_since
    reads it again next run, where it loses again: harmless.)

    Rows whose key is null cannot be told apart or merged: they are left out
    (the staging models count them with the json_key_castable test).
#}
{% macro deduplicate_incremental(relation, unique_key, order_columns, keep='latest') -%}
    {%- if keep not in ('latest', 'first') -%}
        {{ exceptions.raise_compiler_error("keep must be 'latest' or 'first', not " ~ keep) }}
    {%- endif -%}
    {%- set direction = ' desc' if keep == 'latest' else '' -%}
    {%- set order_by = order_columns | join(direction ~ ', ') ~ direction -%}
    {%- if is_incremental() -%}
        {%- set beats_kept_row -%}
            not exists (
                select 1
                from {{ this }} as kept
                where
                    kept.{{ unique_key }} = candidate.{{ unique_key }}
                    and {{ _at_least_as_good('kept', 'candidate', order_columns, keep) }}
            )
        {%- endset -%}
    {%- else -%}
        {%- set beats_kept_row = 'true' -%}
    {%- endif -%}
    {%- set challengers -%}
        (
            select candidate.*
            from {{ relation }} as candidate
            where
                candidate.{{ unique_key }} is not null
                and {{ beats_kept_row }}
        ) as challengers
    {%- endset -%}
    {{ deduplicate(challengers, unique_key, order_by) }}
{%- endmacro %}

{#
    `left` ranks at least as high as `right` on `order_columns`
    (lexicographic, written out so every adapter can run it).
#}
{% macro _at_least_as_good(left, right, order_columns, keep) -%}
    {%- set op = '>' if keep == 'latest' else '<' -%}
    {%- set last = order_columns[-1] -%}
    {%- set ns = namespace(expr=left ~ '.' ~ last ~ ' ' ~ op ~ '= ' ~ right ~ '.' ~ last) -%}
    {%- for column in (order_columns[:-1] | reverse) -%}
        {%- set l = left ~ '.' ~ column -%}
        {%- set r = right ~ '.' ~ column -%}
        {%- set tie = l ~ ' = ' ~ r ~ ' and ' ~ ns.expr -%}
        {%- set ns.expr = '(' ~ l ~ ' ' ~ op ~ ' ' ~ r ~ ' or (' ~ tie ~ '))' -%}
    {%- endfor -%}
    {{ ns.expr }}
{%- endmacro %}
