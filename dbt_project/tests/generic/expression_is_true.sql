{#
    Fails on every row where `expression` is not true (null counts as a failure).
    Usage: data_tests: [{expression_is_true: {arguments: {expression: "x >= 0"}}}]
#}
{% test expression_is_true(model, expression, column_name=None) %}
select *
from {{ model }}
where not coalesce(({{ expression }}), false)
{% endtest %}
