-- One row per dbt invocation: what it ran, how long, and how it ended.
with

invocations as (
    select * from {{ ref('stg_ops__dbt_invocations') }}
),

results as (
    select
        invocation_id,
        count(*) filter (where resource_type in ('model', 'snapshot', 'seed')) as nodes_built,
        count(*) filter (where resource_type in ('test', 'unit_test')) as tests_run,
        count(*) filter (where status = 'warn') as warned,
        count(*) filter (where is_failure) as failed
    from {{ ref('stg_ops__dbt_node_results') }}
    group by invocation_id
)

select
    i.invocation_id,
    i.command,
    i.target,
    i.adapter_type,
    i.started_at,
    i.finished_at,
    i.elapsed_seconds,
    i.success,
    i.logical_date,
    coalesce(r.nodes_built, 0) as nodes_built,
    coalesce(r.tests_run, 0) as tests_run,
    coalesce(r.warned, 0) as warned,
    coalesce(r.failed, 0) as failed
from invocations as i
left join results as r on i.invocation_id = r.invocation_id
