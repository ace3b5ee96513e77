"""Every settings class: the project's own, and each source's beside its code.

A source keeps its settings in ``loaders/<source>/settings.py``; they are found
here by that path (nothing to register), so the configuration reference, the
secret masking and the ``.env.example`` check see a new source's settings as
soon as its folder exists.
"""

from __future__ import annotations

import importlib
import inspect
from functools import cache

from config.base import PROJECT_ROOT, Settings
from config.settings import CORE_SETTINGS

SOURCE_SETTINGS_GLOB = "loaders/*/settings.py"


@cache
def all_settings() -> tuple[type[Settings], ...]:
    found: list[type[Settings]] = list(CORE_SETTINGS)
    for path in sorted(PROJECT_ROOT.glob(SOURCE_SETTINGS_GLOB)):
        module = importlib.import_module(f"loaders.{path.parent.name}.settings")
        found += [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Settings) and cls.__module__ == module.__name__
        ]
    return tuple(found)


def all_variables() -> dict[str, tuple[type[Settings], str]]:
    """Every variable a settings class reads -> (the class, its field)."""
    return {var: (cls, field) for cls in all_settings() for var, field in cls.variables().items()}
