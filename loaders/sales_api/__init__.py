"""Partner sales API (seed 004) -> local files -> ``raw_sales.*``, one logical date at a time.

- ``client``: the HTTP protocol (generate_report -> get_report -> get_increment),
  with retries and one-line errors;
- ``files``: the date-partitioned folder the increment's files are saved in;
- ``checks``: the file contract (every file present, header, fields, values);
- ``landing``: the raw tables and the atomic per-date replace;
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
