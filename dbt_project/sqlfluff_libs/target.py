"""``target`` for sqlfluff's jinja templater: the warehouse's profile target (PostgreSQL).

dbt never reads this module.
"""

type = "postgres"
name = "dev"


def get(key: str, default=None):
    """``target.get(...)``, as dbt's target dict answers it."""
    return globals().get(key, default)
