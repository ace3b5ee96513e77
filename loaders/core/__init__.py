"""The landing core every source loader is built on.

- ``warehouse``: connections, with one-line errors (unreachable, connection lost);
- ``control``: the ``loader`` schema: batches, watermarks, rejects, per-stream locks;
- ``copy``: COPY text encoding, and COPY that isolates the rows PostgreSQL refuses;
- ``raw_tables``: declarative raw table specs, created idempotently.

A batch's raw rows, its rejects, its ``loader.batches`` row and the advanced
watermark commit in one transaction: a crash at any point rolls all of them
back together, and a rerun resumes from the last committed watermark.
"""
