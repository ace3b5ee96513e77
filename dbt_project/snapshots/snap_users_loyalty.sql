{#- A SQL snapshot so that it reads only new batches: see snap_orders_status.sql. -#}
{% snapshot snap_users_loyalty %}
{{ config(
    unique_key='user_id',
    strategy='check',
    check_cols=['loyalty_status'],
    updated_at='updated_at',
    hard_deletes='ignore',
    post_hook="{{ close_deleted_versions('user_id', 'stg_oltp__users') }}",
) }}

select * from {{ ref('stg_oltp__users') }}
{{ snapshot_since() }}
{% endsnapshot %}
