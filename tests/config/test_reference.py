"""One set of keys: the settings classes, .env.example and the generated reference agree."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from pydantic import SecretStr

from config import PROJECT_ROOT, ConfigError, Settings
from config.base import setting
from config.catalog import all_settings, all_variables
from config.env_file import _not_ours, compose_keys, documented_keys
from config.reference import REFERENCE, reference
from config.secrets import redact, secret_variables


def dbt_reads() -> set[str]:
    """The variables profiles.yml and the dbt project read with env_var()."""
    dbt = [p for p in (PROJECT_ROOT / "dbt_project").rglob("*.[sy][qm][l]")
           if p.is_file() and not {"target", "logs"} & set(p.parts)]  # fmt: skip
    read: set[str] = set()
    for path in [PROJECT_ROOT / "profiles" / "profiles.yml", *dbt]:
        read |= set(re.findall(r"env_var\(\s*'([A-Z][A-Z0-9_]*)'", path.read_text()))
    return {k for k in read if not _not_ours(k)}


def test_env_example_documents_exactly_the_keys_the_settings_read() -> None:
    # Airflow's own variables are read as fallbacks (AIRFLOW__API__PORT) but not ours to document.
    code = {var for var in all_variables() if not var.startswith("AIRFLOW__")}
    assert len(code) > 60
    # Every key read is documented, and every documented key is read (by the code, or
    # by docker compose for its own servers).
    assert code - documented_keys() == set()
    assert documented_keys() - code <= compose_keys()
    assert documented_keys() - code == {"MONGO_USER", "MONGO_PASSWORD"}
    # Whatever dbt reads from the environment is a setting too.
    assert dbt_reads() - code == set()


def test_the_reference_is_generated_from_the_settings_classes() -> None:
    assert REFERENCE.read_text() == reference(), (
        "docs/configuration-reference.md is stale: "
        "run python -m config reference > docs/configuration-reference.md"
    )
    for var in all_variables():
        if not var.startswith("AIRFLOW__"):  # a fallback of Airflow's own, named beside its key
            assert f"`{var}`" in reference()
    proc = subprocess.run(
        [sys.executable, "-m", "config", "reference"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert proc.stdout == reference()


def test_every_source_keeps_its_settings_beside_its_code() -> None:
    sources = {p.parent.name for p in (PROJECT_ROOT / "loaders").glob("*/cli.py")}
    found = {
        c.__module__.split(".")[1] for c in all_settings() if c.__module__.startswith("loaders.")
    }
    assert sources and found == sources


def test_secrets_follow_from_the_field_types(monkeypatch) -> None:
    whole, uris = secret_variables()
    for var, (cls, name) in all_variables().items():
        is_secret = cls.model_fields[name].annotation is SecretStr
        assert (var in whole) == is_secret
    assert {"WAREHOUSE_PASSWORD", "SALES_API_KEY", "TELEGRAM_BOT_TOKEN"} <= set(whole)
    assert "MONGO_URI" in uris
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "s3cret-value")
    monkeypatch.setenv("MONGO_URI", "mongodb://app:hunter22@db:27017")
    text = redact("auth failed for s3cret-value at mongodb://app:hunter22@db:27017")
    assert "s3cret" not in text and "hunter22" not in text and text.count("***") == 2
    # The repr of a settings object never shows a secret either.
    from loaders.kafka.settings import KafkaSettings

    assert "s3cret" not in repr(KafkaSettings.from_env())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WAREHOUSE_PORT": "55 451"}, "WAREHOUSE_PORT='55 451' is not an integer"),
        ({"LOADER_BATCH_SIZE": "0"}, "LOADER_BATCH_SIZE='0' must be at least 1"),
        ({"REPORT_TIME": "25:00"}, "REPORT_TIME='25:00' is not a time of day"),
        ({"EMBEDDED_SERVICES": "postgres,redis"}, "unknown service(s) ['redis']"),
        ({"CLICKHOUSE_SECURE": "maybe"}, "CLICKHOUSE_SECURE='maybe' is not true or false"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, env, message) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        for cls in all_settings():
            cls.from_env()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).endswith("fix it in .env or the environment")


def test_empty_means_the_default_and_fallbacks_apply(monkeypatch) -> None:
    from loaders.oltp.settings import OltpSettings

    monkeypatch.setenv("WAREHOUSE_PORT", "")
    monkeypatch.setenv("OLTP_HOST", "")
    monkeypatch.setenv("WAREHOUSE_HOST", "10.1.2.3")
    oltp = OltpSettings.from_env()
    assert (oltp.host, oltp.port) == ("10.1.2.3", 54329)
    monkeypatch.setenv("OLTP_HOST", "oltp.internal")
    assert OltpSettings.from_env().host == "oltp.internal"


def test_a_new_settings_class_is_documented_by_its_fields() -> None:
    class Example(Settings):
        section = "Example"
        token: SecretStr = setting("EXAMPLE_TOKEN", SecretStr(""), "a token")
        port: int = setting(("EXAMPLE_PORT", "OTHER_PORT"), 1, "a port")

    assert Example.variables() == {"EXAMPLE_TOKEN": "token", "EXAMPLE_PORT": "port",
                                   "OTHER_PORT": "port"}  # fmt: skip
    assert Example(port=2).port == 2  # tests construct settings by field name
