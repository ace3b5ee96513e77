"""The daily app report and anomaly alerts, built from the marts and sent to Telegram.

``daily``: yesterday's app metrics with day-on-day and week-on-week changes
and one PNG of 7-day charts. ``alerts``: one message per newly flagged
15-minute slice. Both go through ``telegram`` when a bot and a chat are
configured, or are written under REPORT_DIR; what was delivered is recorded
in the warehouse (``deliveries``) so that nothing goes out twice.
"""
