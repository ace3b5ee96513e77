-- What each stream (the registrations topic, the order system's change capture
-- slot) had left to deliver as each load ended; is_latest marks the last one.
select
    source,
    stream,
    measured_at,
    lag,
    unit,
    measured_at = max(measured_at) over (partition by source, stream) as is_latest
from {{ ref('stg_loader__lag') }}
