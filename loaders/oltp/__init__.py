"""Order system OLTP PostgreSQL -> ``raw_oltp.*``, incremental by a keyset watermark.

- ``client``: the source connection and its keyset reads (``COPY ... TO STDOUT``);
- ``checks``: the replicated tables' contract, and the rows the watermark refuses;
- ``landing``: the raw tables and batched COPY-to-COPY landing, rows and watermark
  in one transaction;
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
