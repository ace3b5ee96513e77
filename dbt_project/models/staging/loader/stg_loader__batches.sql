-- One row per committed load batch.
select
    batch_id,
    source,
    stream,
    rows_landed,
    rows_rejected,
    committed_at
from {{ source_or_empty('loader', 'batches', {
    'batch_id': 'bigint', 'source': 'text', 'stream': 'text', 'rows_landed': 'integer',
    'rows_rejected': 'integer', 'committed_at': 'timestamptz'}) }}
