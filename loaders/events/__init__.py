"""Feed and messenger events in ClickHouse -> ``raw_events.*``, a UTC day at a time.

- ``client``: the ClickHouse side (read-only): the tables' contract, rows per day,
  a day's rows streamed as TabSeparated text;
- ``landing``: the raw tables, and the transactional replace of one table's day
  (rows, rejects, batch and watermark in one transaction);
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
