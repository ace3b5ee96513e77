-- What each stream had left to deliver as each of its loads ended.
select
    source,
    stream,
    lag,
    unit,
    measured_at
from {{ source_or_empty('loader', 'lag', {
    'source': 'text', 'stream': 'text', 'lag': 'bigint', 'unit': 'text',
    'measured_at': 'timestamptz'}) }}
