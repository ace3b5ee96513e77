"""The Kafka registrations stream's settings (``KAFKA_*``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import SecretStr

from config.base import Settings, setting


class KafkaSettings(Settings):
    """The Kafka broker and the order system's topic of new registrations."""

    section: ClassVar[str] = "Kafka: the order system's stream of new registrations"

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092", "the brokers (the embedded one locally)"
    )
    topic: str = setting("KAFKA_NEW_USERS_TOPIC", "new_users_events", "the registrations topic")
    partitions: int = setting(
        "KAFKA_PARTITIONS", 3, "partitions when the project creates the topic", ge=1
    )
    security_protocol: str = setting(
        "KAFKA_SECURITY_PROTOCOL", "PLAINTEXT", "PLAINTEXT locally; SASL_SSL for a managed cluster"
    )
    sasl_mechanism: str = setting("KAFKA_SASL_MECHANISM", "", "e.g. PLAIN, SCRAM-SHA-512")
    sasl_username: str = setting("KAFKA_SASL_USERNAME", "", "the SASL user")
    sasl_password: SecretStr = setting("KAFKA_SASL_PASSWORD", SecretStr(""), "its password")
    timeout_seconds: float = setting(
        "KAFKA_TIMEOUT_SECONDS", 10.0, "per broker request before a load gives up", gt=0
    )

    def client_config(self) -> dict[str, str]:
        """librdkafka settings shared by the producer, the consumer and the admin client."""
        conf = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username
            conf["sasl.password"] = self.sasl_password.get_secret_value()
        return conf
