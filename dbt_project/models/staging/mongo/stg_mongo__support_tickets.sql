-- Latest version of every support ticket.

with

source as (
    select * from {{ source('mongo', 'support_tickets') }}
),

renamed as (
    select
        ---------- ids
        {{ json_value('doc', 'ticket_id') }} as ticket_id,
        {{ json_value('doc', 'user_id', 'bigint') }} as user_id,
        _id as document_id,

        ---------- strings
        {{ json_value('doc', 'status') }} as status,
        {{ json_value('doc', 'issue_type') }} as issue_type,

        ---------- arrays
        {{ json_array('doc', 'messages') }} as messages,

        ---------- timestamps
        {{ json_value('doc', 'created_at', 'timestamptz') }} as created_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at,

        ---------- lineage
        _op as change_op,
        _batch_id as batch_id

    from source
),

latest as (
    {{ deduplicate_incremental('renamed', 'ticket_id',
                               ['updated_at', 'loaded_at', 'document_id', 'batch_id']) }}
)

{{ without_deleted_keys('latest') }}
