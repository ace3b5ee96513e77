"""The base of every settings class: pydantic-settings, one environment variable per field.

A settings class is a pydantic-settings model whose every field names its
variable (``setting("WAREHOUSE_PORT", 54329, "...")``), so the variable is
greppable, the configuration reference is generated from the classes
(``python -m config reference``) and ``.env.example`` is checked against them.
``from_env()`` reads the environment (make's commands have ``.env`` in it, see
``config/env_file.py``) and turns a bad value into one ``ConfigError`` line
naming the variable; an empty value means the default, as in ``.env.example``.

Secrets are typed ``SecretStr``: their repr is masked, and ``config.secrets``
masks every ``SecretStr`` field's value (and the password in every field marked
``uri_with_password``) in the messages the project prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting is missing or malformed; the message says which and how to fix it."""


# Field metadata: the value is a URI whose password must never be printed.
URI_WITH_PASSWORD = {"uri_with_password": True}
# A base URL, read without its trailing slash (paths are joined to it with one).
BaseUrl = Annotated[str, AfterValidator(lambda url: url.rstrip("/"))]


def setting(env: str | tuple[str, ...], default: Any, doc: str, **kwargs: Any) -> Any:
    """A field read from ``env`` (or the first of several set variables), with its docs.

    ``doc`` is the line the configuration reference prints for the variable.
    """
    alias = env if isinstance(env, str) else AliasChoices(*env)
    return Field(default, validation_alias=alias, description=doc, **kwargs)


class Settings(BaseSettings):
    """Frozen settings read from the environment; construct directly in tests."""

    model_config = SettingsConfigDict(
        frozen=True,
        env_ignore_empty=True,  # KEY= in .env means the default
        extra="ignore",
        populate_by_name=True,  # Settings(host=...) in tests and callers
    )
    # The section of the configuration reference (and of .env.example) it belongs to.
    section: ClassVar[str] = ""

    @classmethod
    def from_env(cls) -> Self:
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError(_one_line(cls, exc)) from None

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Every variable it reads -> the field it fills (fallback variables included)."""
        found = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            choices = alias.choices if isinstance(alias, AliasChoices) else [alias]
            found |= {str(choice): name for choice in choices if choice}
        return found


_PHRASES = {
    "int_parsing": "is not an integer",
    "int_from_float": "is not an integer",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false",
}


def _one_line(cls: type[Settings], exc: ValidationError) -> str:
    """``WAREHOUSE_PORT='abc' is not an integer; fix it in .env or the environment``."""
    error = exc.errors()[0]
    # Read from the environment, the error's location is the variable; given
    # as an argument, the field's name.
    name = str(error["loc"][0]) if error["loc"] else cls.__name__
    if name in cls.model_fields:
        alias = cls.model_fields[name].validation_alias
        name = str(alias.choices[0] if isinstance(alias, AliasChoices) else alias or name)
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind in _PHRASES:
        phrase = _PHRASES[kind]
    elif kind == "literal_error":
        phrase = "is not one of " + str(ctx.get("expected", "")).replace("'", "").replace(
            " or ", ", "
        )
    elif kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        phrase = f"must be at least {bound}" if kind == "greater_than_equal" else f"> {bound}"
    elif kind == "value_error":
        phrase = str(ctx.get("error", error["msg"]))
    else:
        phrase = error["msg"].lower()
    value = error.get("input")
    shown = f"{name}={value!r}" if isinstance(value, str | int | float) else name
    return f"{shown} {phrase}; fix it in .env or the environment"
