{#
    What a build covers: its logical day, and whether tests check every row
    or only the rows the latest builds wrote. Both are read when the build
    runs (`execute`), never at parse time, so a new day every run does not
    cost a re-parse of the project: dbt re-parses everything when --vars
    change (about 3 s at 300 nodes), and every file that reads an env_var at
    parse time when its value changes.
#}

{#
    The run's logical day as an ISO date string, or none (the models then
    take the latest day in the data). var('logical_date') wins when given
    (`--vars`, and unit tests' overrides); else DBT_LOGICAL_DATE, which
    make run sets.
#}
{% macro run_logical_date() -%}
    {%- set given = var('logical_date', none) -%}
    {%- if not given and execute -%}
        {%- set given = env_var('DBT_LOGICAL_DATE', '') -%}
    {%- endif -%}
    {{ return((given | string) if given else none) }}
{%- endmacro %}

{#
    'all' (the default): every test checks every row, as a hand-run `dbt
    build` or `dbt test` should. 'new': the tests of a model that declares
    its new rows (meta.new_rows, see new_rows_filter) check only those rows;
    make run's daily builds set it (DBT_TEST_SCOPE=new, or `--vars
    '{test_scope: new}'`), and its weekly full check sets 'all'. A full
    refresh always checks every row.
#}
{% macro test_scope() -%}
    {%- set scope = var('test_scope', none) -%}
    {%- if not scope and execute -%}
        {%- set scope = env_var('DBT_TEST_SCOPE', '') -%}
    {%- endif -%}
    {%- set scope = scope or 'all' -%}
    {%- if scope not in ('new', 'all') -%}
        {{ exceptions.raise_compiler_error(
            "test scope must be 'new' or 'all', not '" ~ scope ~ "'") }}
    {%- endif -%}
    {{ return(scope) }}
{%- endmacro %}

{#
    dbt's hook for every generic test's `model`: the test's own `where`
    config, and (test scope 'new') the tested model's new rows. Overrides
    dbt's default__get_where_subquery, which applies `where` alone.
#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do conditions.append(where) -%}
    {%- endif -%}
    {%- set new_rows = new_rows_filter(relation) -%}
    {%- if new_rows -%}
        {%- do conditions.append(new_rows) -%}
    {%- endif -%}
    {%- if not conditions -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- do return(
        '(select * from ' ~ relation ~ ' where (' ~ conditions | join(') and (') ~ ')) dbt_subquery'
    ) -%}
{%- endmacro %}

{#
    The rows the latest builds wrote into the model a test is attached to,
    as a condition, or none (test every row). A model declares them in its
    config: `meta: {new_rows: {column: C, unit: U}}`:

    - unit `day` (the events models, rebuilt a day at a time): C from the
      run's logical day (else the latest C in the model) minus
      events_lookback_days: the days the incremental build rebuilt;
    - unit `hour` (the staging models merging loader batches, C their
      loaded_at): C within var('test_window_hours') (48) of the latest C in
      the model: every batch of the last two daily runs, so a day that
      failed and was landed again the next day is still checked.

    The bound is rendered as a literal (one small query when the test
    compiles), so the filter can use the model's index on C. Rows outside
    the window were checked when they were new; the scheduled full check
    (test scope 'all') checks them all again.
#}
{% macro new_rows_filter(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or test_scope() == 'all' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
    {%- set spec = ((node or {}).get('config', {}).get('meta', {})).get('new_rows') -%}
    {%- if not spec -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set column, unit = spec['column'], spec.get('unit', 'hour') -%}
    {%- set datetime = modules.datetime -%}
    {%- set latest = none -%}
    {%- if unit == 'day' and run_logical_date() -%}
        {%- set latest = datetime.date.fromisoformat(run_logical_date()) -%}
    {%- else -%}
        {%- set query = 'select max(' ~ column ~ ') from ' ~ relation -%}
        {%- set found = run_query(query).columns[0].values()[0] -%}
        {%- if found is none or (found | string)[:10] == '1970-01-01' -%}
            {{ return(none) }}  {# empty (ClickHouse's max of nothing is the epoch) #}
        {%- endif -%}
        {%- set latest = found -%}
    {%- endif -%}
    {%- if unit == 'day' -%}
        {%- set lookback = [var('events_lookback_days') | int, 1] | max -%}
        {%- set first = (latest if latest is not string else datetime.date.fromisoformat(latest[:10])) -%}
        {{ return(column ~ ' >= ' ~ date_literal((first - datetime.timedelta(days=lookback)).isoformat())) }}
    {%- elif unit == 'hour' -%}
        {%- set since = latest - datetime.timedelta(hours=var('test_window_hours') | int) -%}
        {{ return(column ~ " >= '" ~ since.isoformat() ~ "'") }}
    {%- else -%}
        {{ exceptions.raise_compiler_error(
            node.name ~ ": meta.new_rows.unit must be 'day' or 'hour', not '" ~ unit ~ "'") }}
    {%- endif -%}
{%- endmacro %}
