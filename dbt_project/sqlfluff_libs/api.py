"""``api`` for sqlfluff's jinja templater: ``api.Relation.create`` as a dotted name.

The quarantine's macro builds its relation this way; dbt never reads this module.
"""

from __future__ import annotations


class Relation:
    @staticmethod
    def create(database=None, schema=None, identifier=None, type=None) -> str:
        return ".".join(part for part in (schema, identifier) if part)
