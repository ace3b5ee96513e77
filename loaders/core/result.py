"""What a load did: the one result type every loader returns (each adds its own details)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(kw_only=True)
class LoadResult:
    """One load of one stream (a collection, a table, a topic, a day of files).

    A source's loader subclasses it with what it alone knows (a watermark,
    consumer lag, the late days it reloaded) and says where it landed
    (``tables``); the pipelines turn it into the run's summary and XComs.
    """

    landed: int = 0  # rows landed by this load
    rejected: int = 0  # rows rejected by this load, each in loader.rejects with its reason
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the run's summary should say

    def tables(self) -> dict[str, dict[str, int]]:
        """Landed and rejected rows per raw table (``schema.table``)."""
        return {self.raw_table: {"landed": self.landed, "rejected": self.rejected}}

    @property
    def raw_table(self) -> str:
        raise NotImplementedError(f"{type(self).__name__} names no raw table")
