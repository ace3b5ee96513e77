{#- A SQL snapshot, not a YAML one: YAML's relation cannot be filtered, and
    reading only the batches landed since the last run keeps a day's run
    proportional to the day (snapshot_since). Docs: the .yml. -#}
{% snapshot snap_orders_status %}
{{ config(
    unique_key='order_id',
    strategy='check',
    check_cols=['status'],
    updated_at='updated_at',
    hard_deletes='ignore',
    post_hook="{{ close_deleted_versions('order_id', 'stg_oltp__orders') }}",
) }}

select * from {{ ref('stg_oltp__orders') }}
{{ snapshot_since() }}
{% endsnapshot %}
