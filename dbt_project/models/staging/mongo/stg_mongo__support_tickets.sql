with

source as (
    select * from {{ source('mongo', 'support_tickets') }}
),

latest as (
    {{ deduplicate('source', "doc ->> 'ticket_id'",
                   '_source_updated_at desc, _loaded_at desc') }}
),

renamed as (
    select
        ---------- ids
        doc ->> 'ticket_id' as ticket_id,
        (doc ->> 'user_id')::bigint as user_id,
        _id as document_id,

        ---------- strings
        doc ->> 'status' as status,
        doc ->> 'issue_type' as issue_type,

        ---------- arrays
        doc -> 'messages' as messages,

        ---------- timestamps
        (doc ->> 'created_at')::timestamptz as created_at,
        _source_updated_at as updated_at,
        _loaded_at as loaded_at

    from latest
)

select * from renamed
