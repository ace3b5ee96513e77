"""Extract-load: land each source's data in the warehouse's ``raw_*`` schemas.

One subpackage per source, each with the same parts (``client``, ``checks``,
``landing``, ``job``), all on the shared landing core in ``loaders.core``
(COPY, batches, watermarks, rejects, locks). No Airflow here: DAG tasks call
the same ``job`` functions as the CLI (``python -m loaders``).
"""
