-- The events and their marts on a ClickHouse cluster: a replicated local table
-- on every shard, and a Distributed table over them that readers and writers use
-- under the name the project uses today (docs/scaling.md).
--
-- Macros every server defines (config.d/macros.xml): {cluster} (the cluster's
-- name in remote_servers), {shard} and {replica}. {database} and {table} are
-- ClickHouse's own. One statement per `;`, comments only on their own lines.
--
-- Columns, partitions and sort keys are those of datagen/events_writer.py (the
-- raw tables) and of the events models built by `dbt build --target clickhouse`
-- (the marts); tests/stack/test_clickhouse_cluster.py holds them equal.

CREATE DATABASE IF NOT EXISTS events ON CLUSTER '{cluster}';

CREATE DATABASE IF NOT EXISTS marts ON CLUSTER '{cluster}';

-- Raw events, sharded by user: a user's feed actions (and the messages they
-- sent) are on one shard, so per-user-day measures and distinct users per day
-- add up across shards without moving rows between them.

CREATE TABLE IF NOT EXISTS events.feed_actions_local ON CLUSTER '{cluster}'
(
    user_id    UInt32,
    post_id    UInt32,
    action     LowCardinality(String) COMMENT 'view | like',
    time       DateTime('UTC'),
    gender     LowCardinality(String),
    age        UInt8,
    country    LowCardinality(String),
    city       LowCardinality(String),
    os         LowCardinality(String),
    source     LowCardinality(String),
    exp_group  UInt8
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(time)
ORDER BY (time, user_id);

CREATE TABLE IF NOT EXISTS events.feed_actions ON CLUSTER '{cluster}'
AS events.feed_actions_local
ENGINE = Distributed('{cluster}', events, feed_actions_local, cityHash64(user_id));

CREATE TABLE IF NOT EXISTS events.message_actions_local ON CLUSTER '{cluster}'
(
    user_id      UInt32 COMMENT 'the sender',
    receiver_id  UInt32,
    time         DateTime('UTC'),
    source       LowCardinality(String),
    exp_group    UInt8,
    gender       LowCardinality(String),
    age          UInt8,
    country      LowCardinality(String),
    city         LowCardinality(String),
    os           LowCardinality(String)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY toDate(time)
ORDER BY (time, user_id);

CREATE TABLE IF NOT EXISTS events.message_actions ON CLUSTER '{cluster}'
AS events.message_actions_local
ENGINE = Distributed('{cluster}', events, message_actions_local, cityHash64(user_id));

-- Marts: small (rows per day, per slice), rebuilt a day at a time by partition.
-- Sharded by day, so a day's rows live on one shard and replacing a day's
-- partition (dbt's insert_overwrite) touches that shard only.

CREATE TABLE IF NOT EXISTS marts.app_metrics_daily_local ON CLUSTER '{cluster}'
(
    event_date           Date,
    dau_feed             Int64,
    dau_messenger        Int64,
    dau_both             Int64,
    views                Int64,
    likes                Int64,
    ctr                  Nullable(Float64),
    messages_sent        Int64,
    senders              Int64,
    receivers            Int64,
    sent_received_ratio  Nullable(Float64)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY event_date
ORDER BY event_date;

CREATE TABLE IF NOT EXISTS marts.app_metrics_daily ON CLUSTER '{cluster}'
AS marts.app_metrics_daily_local
ENGINE = Distributed('{cluster}', marts, app_metrics_daily_local, toYYYYMMDD(event_date));

CREATE TABLE IF NOT EXISTS marts.feed_dimension_daily_local ON CLUSTER '{cluster}'
(
    event_date         Date,
    dimension          String,
    dimension_value    String,
    views              Int64,
    likes              Int64,
    messages_received  Int64,
    messages_sent      Int64,
    users_received     Int64,
    users_sent         Int64
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY event_date
ORDER BY event_date;

CREATE TABLE IF NOT EXISTS marts.feed_dimension_daily ON CLUSTER '{cluster}'
AS marts.feed_dimension_daily_local
ENGINE = Distributed('{cluster}', marts, feed_dimension_daily_local, toYYYYMMDD(event_date));

CREATE TABLE IF NOT EXISTS marts.feed_anomalies_local ON CLUSTER '{cluster}'
(
    event_date   Date,
    slice_start  DateTime('UTC'),
    metric       String,
    value        Nullable(Float64),
    lower_bound  Nullable(Float64),
    upper_bound  Nullable(Float64),
    is_anomaly   UInt8
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')
PARTITION BY event_date
ORDER BY event_date;

CREATE TABLE IF NOT EXISTS marts.feed_anomalies ON CLUSTER '{cluster}'
AS marts.feed_anomalies_local
ENGINE = Distributed('{cluster}', marts, feed_anomalies_local, toYYYYMMDD(event_date));
