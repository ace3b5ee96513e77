-- One row per message of the latest version of each ticket. A thread that is
-- not an array is null in staging and unnests to no rows; a field of a
-- message that cannot be read is null.

with

tickets as (
    select * from {{ ref('stg_mongo__support_tickets') }}
),

unnested as (
    select
        tickets.ticket_id,
        message.message_position as message_number,
        message.body
    from tickets
    cross join
        lateral jsonb_array_elements(tickets.messages)
        with ordinality as message (body, message_position)
),

renamed as (
    select
        ---------- ids
        ticket_id,
        message_number::integer as message_number,

        ---------- strings
        {{ json_value('body', 'sender') }} as sender,
        {{ json_value('body', 'text') }} as message_text,

        ---------- timestamps
        {{ json_value('body', 'sent_at', 'timestamptz') }} as sent_at

    from unnested
)

select * from renamed
