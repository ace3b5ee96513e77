"""The dbt profile every Cosmos task runs with: the project's profiles.yml, on a target."""

from __future__ import annotations

from cosmos import ProfileConfig

from config import DbtSettings
from include.defaults import PROFILES_YML


def profile_config(target: str | None = None) -> ProfileConfig:
    """``target``: a profile output; None, the configured one (DBT_TARGET)."""
    return ProfileConfig(
        profile_name="store_analytics",
        target_name=target or DbtSettings.from_env().target,
        profiles_yml_filepath=PROFILES_YML,
    )
