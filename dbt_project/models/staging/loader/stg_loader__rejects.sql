-- One row per refused record, with its reason.
select
    reject_id,
    source,
    stream,
    reason,
    rejected_at
from {{ source_or_empty('loader', 'rejects', {
    'reject_id': 'bigint', 'source': 'text', 'stream': 'text', 'reason': 'text',
    'rejected_at': 'timestamptz'}) }}
