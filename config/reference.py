"""The configuration reference, generated from the settings classes.

``python -m config reference`` prints it; ``docs/configuration-reference.md``
is its output, and a test keeps the two (and ``.env.example``) the same.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from pydantic import AliasChoices, SecretStr

from config.base import PROJECT_ROOT, Settings
from config.catalog import all_settings

REFERENCE = PROJECT_ROOT / "docs" / "configuration-reference.md"

HEADER = """\
# Configuration reference

Every variable the project's code reads, generated from its settings classes
(`python -m config reference > docs/configuration-reference.md`; a test fails
when this file, the classes or `.env.example` disagree). Set them in `.env`
(copied from `.env.example`) or in the environment, which wins. An empty value
means the default. Secrets are masked in every message the project prints.
How the pieces fit: [Configuration](configuration.md).
"""


def _default(cls: type[Settings], name: str) -> str:
    field = cls.model_fields[name]
    alias = field.validation_alias
    value = field.default
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, frozenset):
        value = ",".join(sorted(value))
    if isinstance(value, Path):
        value = str(value)
    shown = (
        "empty"
        if value in ("", None)
        else f"`{str(value).lower() if isinstance(value, bool) else value}`"
    )
    if isinstance(alias, AliasChoices) and len(alias.choices) > 1:
        fallbacks = ", ".join(f"`{c}`" for c in alias.choices[1:])
        shown = f"{fallbacks}, else {shown}"
    return shown


def section(cls: type[Settings]) -> str:
    path = Path(inspect.getfile(cls)).relative_to(PROJECT_ROOT)
    lines = [
        f"## {cls.section}",
        "",
        f"`{cls.__name__}` in `{path}`",
        "",
        "| variable | default | what it sets |",
        "|---|---|---|",
    ]
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        var = alias.choices[0] if isinstance(alias, AliasChoices) else alias
        note = field.description or ""
        if field.annotation is SecretStr:
            note += " (secret)"
        lines.append(f"| `{var}` | {_default(cls, name)} | {note} |")
    return "\n".join(lines)


def reference() -> str:
    return "\n\n".join([HEADER.rstrip(), *(section(c) for c in all_settings())]) + "\n"
