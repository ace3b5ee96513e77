-- One row per dbt invocation the project kept.
select
    invocation_id,
    command,
    target,
    adapter_type,
    started_at,
    started_at + make_interval(secs => elapsed_seconds) as finished_at,
    elapsed_seconds,
    success,
    logical_date,
    manifest_hash
from {{ source_or_empty('ops', 'dbt_invocations', {
    'invocation_id': 'text', 'command': 'text', 'target': 'text', 'adapter_type': 'text',
    'started_at': 'timestamptz', 'elapsed_seconds': 'double precision', 'success': 'boolean',
    'logical_date': 'date', 'manifest_hash': 'text'}) }}
