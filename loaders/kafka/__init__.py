"""Kafka topic ``new_users_events`` -> ``raw_kafka.new_users_events``, exactly once.

- ``client``: the consumer (explicit partition assignment, no consumer-group commits)
  and one-line broker errors;
- ``checks``: each message's contract -> a COPY line, or a reject with its reason;
- ``landing``: the raw table and batched landing, rows and consumed offsets in one
  transaction;
- ``job``: the entry points the CLI, ``make run`` and Airflow call.
"""
