"""MongoDB app database -> ``raw_mongo.*``, incremental by a per-collection watermark.

- ``client``: the connection and the reads (keyset order, prefetching);
- ``checks``: each document's contract -> a COPY line, or a reject with its reason;
- ``landing``: the raw tables and batched, transactional landing;
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
