"""Platform health's own data: dbt's artifacts landed in ``raw_ops``."""
