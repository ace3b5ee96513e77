-- One row per raw table each kept `dbt source freshness` read.
select
    invocation_id,
    unique_id,
    split_part(unique_id, '.', 3) as source_name,
    split_part(unique_id, '.', 4) as table_name,
    status,
    max_loaded_at,
    snapshotted_at,
    age_seconds
from {{ source_or_empty('ops', 'dbt_source_freshness', {
    'invocation_id': 'text', 'unique_id': 'text', 'status': 'text',
    'max_loaded_at': 'timestamptz', 'snapshotted_at': 'timestamptz',
    'age_seconds': 'double precision'}) }}
