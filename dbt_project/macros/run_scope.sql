-- noqa: disable=LT02
{# sqlfluff, linting the whole project, renders variants of these macros' bodies and
   flags the Jinja's indentation (LT02); the SQL they produce is linted where it is used. #}
{#
    What a build covers: its logical day, and whether its tests check every
    row or only what is new since the last build that passed. All are read when the build
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
    {{ return(var_or_env('logical_date', 'DBT_LOGICAL_DATE')) }}
{%- endmacro %}

{#
    var(name) when given, else the environment variable `env` (read only
    when the build runs, never at parse time), as a string; none if neither.
#}
{% macro var_or_env(name, env) -%}
    {%- set given = var(name, none) -%}
    {%- if not given and execute -%}
        {%- set given = env_var(env, '') -%}
    {%- endif -%}
    {{ return((given | string) if given else none) }}
{%- endmacro %}

{#
    What the last build whose every test passed covered, as make run records
    it (or none: every test checks every row, the default for dbt run by
    hand, and make run's weekly full check):
    - tested_before(): when that build started (an ISO timestamp with
      offset); every row loaded before it was in that build (make run loads
      before it builds);
    - tested_day(): its logical day (ISO date); the events models' days up
      to it were rebuilt and tested.
    var('tested_before') / var('tested_day') win; else DBT_TESTED_BEFORE /
    DBT_TESTED_DAY. A failed build records nothing, so the next one tests
    everything since the last that passed.
#}
{% macro tested_before() -%}
    {{ return(var_or_env('tested_before', 'DBT_TESTED_BEFORE')) }}
{%- endmacro %}

{% macro tested_day() -%}
    {{ return(var_or_env('tested_day', 'DBT_TESTED_DAY')) }}
{%- endmacro %}

{#
    dbt's hook for every generic test's `model`: the rows its `where` config
    selects (dbt's default), with the token __new_rows__ in it replaced by the
    tested model's new rows (new_rows_filter), or by `true` (every row). The
    token is set per folder in dbt_project.yml (data_tests: +where), so which
    tests are scoped reads in the config; a `where` without it is dbt's own.
#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if not where -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- if '__new_rows__' in where -%}
        {%- set new_rows = new_rows_filter(relation) or 'true' -%}
        {%- set where = where | replace('__new_rows__', '(' ~ new_rows ~ ')') -%}
    {%- endif -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
{%- endmacro %}

{#
    The rows of the tested model written since the last build that passed
    (tested_before, tested_day), as a condition; none (test every row)
    without that record, on a full refresh, while parsing, or for a model
    that does not declare its new rows. A model declares them in its
    config: `meta: {new_rows: {column: C, unit: U}}`:

    - unit `hour` (the staging models merging loader batches, C their
      loaded_at): C at or after tested_before;
    - unit `day` (the events models, rebuilt a day at a time, C their
      event_date): C from events_lookback_days before the earlier of the day
      after tested_day and the run's logical day: every day a build rebuilt
      since (several days landed at once, a build that failed, an older
      logical day given to rebuild it).

    Sound for the tests these models carry: old rows were tested when they
    were new, and a delete+insert on keys whose new rows are unique keeps
    the table unique. The weekly full check tests every row again.
#}
{% macro new_rows_filter(relation) -%}
    {%- if not execute or flags.FULL_REFRESH -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
    {%- set spec = ((node or {}).get('config', {}).get('meta', {})).get('new_rows') -%}
    {%- if not spec -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set column, unit = spec['column'], spec.get('unit') -%}
    {%- if unit not in ('hour', 'day') -%}
        {{ exceptions.raise_compiler_error(
            node.name ~ ": meta.new_rows.unit must be 'hour' or 'day', not '" ~ unit ~ "'") }}
    {%- elif unit == 'hour' -%}
        {%- if not tested_before() -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return(column ~ " >= '" ~ tested_before() ~ "'") }}
    {%- else -%}
        {%- if not tested_day() -%}
            {{ return(none) }}
        {%- endif -%}
        {%- set datetime = modules.datetime -%}
        {%- set first = datetime.date.fromisoformat(tested_day()) + datetime.timedelta(days=1) -%}
        {%- if run_logical_date() -%}
            {%- set first = [first, datetime.date.fromisoformat(run_logical_date())] | min -%}
        {%- endif -%}
        {%- set lookback = [var('events_lookback_days') | int, 1] | max -%}
        {%- set start = (first - datetime.timedelta(days=lookback)).isoformat() -%}
        {{ return(column ~ ' >= ' ~ date_literal(start)) }}
    {%- endif -%}
{%- endmacro %}
