"""What the sources' simulator hooks share: the simulated store's settings and population."""

from __future__ import annotations

import datetime as dt

from config import DatagenSettings
from datagen.population import Population


def simulation() -> tuple[DatagenSettings, Population]:
    """DATAGEN_*, and the population every simulated system plays from."""
    gen = DatagenSettings.from_env()
    return gen, Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date))
