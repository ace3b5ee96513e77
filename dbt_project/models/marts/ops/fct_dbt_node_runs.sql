-- One row per node per invocation: its status and time, with the invocation's target.
with

results as (
    select * from {{ ref('stg_ops__dbt_node_results') }}
),

invocations as (
    select * from {{ ref('stg_ops__dbt_invocations') }}
)

select
    r.invocation_id,
    r.unique_id,
    r.resource_type,
    r.name,
    i.target,
    r.status,
    r.is_failure,
    r.failures,
    r.message,
    r.execution_seconds,
    r.rows_affected,
    coalesce(r.started_at, i.started_at) as started_at
from results as r
inner join invocations as i on r.invocation_id = i.invocation_id
