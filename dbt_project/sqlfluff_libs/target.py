"""``target`` for sqlfluff's jinja templater: the warehouse's profile target (PostgreSQL).

dbt never reads this module.
"""

type = "postgres"
name = "dev"
