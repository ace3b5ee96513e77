"""``raw_oltp.<table>``: one row per replicated row version, landed COPY to COPY.

Values land as text exactly as the source's ``COPY ... TO STDOUT`` wrote them
(the source session runs in UTC with ISO dates), so no source value can be
refused; staging types them. Raw is append-only; staging keeps each key's
latest version.
"""

from __future__ import annotations

from loaders.core.raw_tables import RawTable
from loaders.oltp.checks import TABLES, OltpTable

SOURCE = "oltp"
RAW_SCHEMA = "raw_oltp"

_TABLES = {
    t.name: RawTable(
        RAW_SCHEMA,
        t.name,
        tuple((column, "text") for column in t.columns),
        indexes=((t.primary_key, t.cursor), ("_batch_id",)),
    )
    for t in TABLES.values()
}
RAW_TABLES = tuple(_TABLES.values())


def raw_table(spec: OltpTable) -> RawTable:
    return _TABLES[spec.name]
