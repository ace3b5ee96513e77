-- One row per node each kept invocation ran; hooks (operation.*) left out.
select
    invocation_id,
    unique_id,
    resource_type,
    name,
    status,
    status in ('fail', 'error') as is_failure,
    failures,
    message,
    execution_seconds,
    rows_affected,
    started_at,
    completed_at
from {{ source_or_empty('ops', 'dbt_node_results', {
    'invocation_id': 'text', 'unique_id': 'text', 'resource_type': 'text', 'name': 'text',
    'status': 'text', 'failures': 'integer', 'message': 'text',
    'execution_seconds': 'double precision', 'rows_affected': 'bigint',
    'started_at': 'timestamptz', 'completed_at': 'timestamptz'}) }}
where resource_type <> 'operation'
