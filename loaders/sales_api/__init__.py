"""Partner sales API -> local files -> ``raw_sales_api.*``, one logical date at a time.

- ``client``: the HTTP protocol (generate_report -> get_report -> get_increment),
  with retries and one-line errors;
- ``files``: the date-partitioned folder the increment's files are saved in (a new
  fetch replaces it only once it is whole);
- ``checks``: the file contract: file-level problems stop the load, a row that
  breaks the field contract is rejected and the other rows land;
- ``landing``: the raw tables and the atomic per-date replace of rows and rejects;
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
