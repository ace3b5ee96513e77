-- One row per message of the latest version of each ticket.

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
        body ->> 'sender' as sender,
        body ->> 'text' as message_text,

        ---------- timestamps
        (body ->> 'sent_at')::timestamptz as sent_at

    from unnested
)

select * from renamed
