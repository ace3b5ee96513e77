-- Every test's results per day and target, and since when a failing test fails:
-- failing_since is its first failure after its last pass (null while it passes).
-- A skipped run (its model failed first) says nothing either way: left out.
with

results as (
    select * from {{ ref('stg_ops__dbt_node_results') }}
),

invocations as (
    select * from {{ ref('stg_ops__dbt_invocations') }}
),

nodes as (
    select * from {{ ref('stg_ops__dbt_nodes') }}
),

runs as (
    select
        r.unique_id,
        r.name,
        i.target,
        r.status,
        r.is_failure,
        r.message,
        i.manifest_hash,
        coalesce(r.started_at, i.started_at) as ran_at
    from results as r
    inner join invocations as i on r.invocation_id = i.invocation_id
    where r.resource_type in ('test', 'unit_test') and r.status not in ('skipped', 'no-op')
),

last_pass as (
    select
        unique_id,
        target,
        max(ran_at) filter (where not is_failure) as last_passed_at
    from runs
    group by unique_id, target
),

streaks as (
    select
        runs.unique_id,
        runs.target,
        max(p.last_passed_at) as last_passed_at,
        min(runs.ran_at) filter (
            where runs.is_failure and runs.ran_at > coalesce(p.last_passed_at, '-infinity')
        ) as failing_since
    from runs
    inner join last_pass as p on runs.unique_id = p.unique_id and runs.target = p.target
    group by runs.unique_id, runs.target
),

latest as (
    select distinct on (unique_id, target)
        unique_id,
        target,
        status as latest_status,
        message as latest_message,
        manifest_hash
    from runs
    order by unique_id asc, target asc, ran_at desc
),

days as (
    select
        unique_id,
        target,
        min(name) as test_name,
        (ran_at at time zone 'UTC')::date as run_date,
        count(*) as runs,
        count(*) filter (where status = 'pass') as passed,
        count(*) filter (where status = 'warn') as warned,
        count(*) filter (where is_failure) as failed
    from runs
    group by unique_id, target, (ran_at at time zone 'UTC')::date
)

select
    d.unique_id,
    d.target,
    d.run_date,
    d.test_name,
    n.tested_node,
    d.runs,
    d.passed,
    d.warned,
    d.failed,
    l.latest_status,
    l.latest_message,
    s.last_passed_at,
    s.failing_since,
    coalesce((s.failing_since at time zone 'UTC')::date = d.run_date, false) as started_failing
from days as d
inner join latest as l on d.unique_id = l.unique_id and d.target = l.target
inner join streaks as s on d.unique_id = s.unique_id and d.target = s.target
left join nodes as n
    on l.manifest_hash = n.manifest_hash and d.unique_id = n.unique_id
