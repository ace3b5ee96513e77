-- The node lists the kept invocations ran with; a test's model is what it depends on.
select
    manifest_hash,
    unique_id,
    resource_type,
    name,
    schema_name,
    materialized,
    tags,
    depends_on,
    case
        when resource_type = 'test'
            then split_part(coalesce(attached_node, depends_on[1]), '.', 3)
    end as tested_node
from {{ source_or_empty('ops', 'dbt_nodes', {
    'manifest_hash': 'text', 'unique_id': 'text', 'resource_type': 'text', 'name': 'text',
    'schema_name': 'text', 'materialized': 'text', 'tags': 'text[]',
    'depends_on': 'text[]', 'attached_node': 'text'}) }}
