"""The docs site's lineage opens without unit tests: pinned to the page dbt ships."""

from __future__ import annotations

import shutil
from pathlib import Path

import dbt.task.docs
import pytest

from stack.dbt_docs import DEFAULT_TYPES, DocsPageChanged, hide_unit_tests

SHIPPED = Path(dbt.task.docs.__file__).parent / "index.html"


def test_the_shipped_page_opens_the_lineage_without_unit_tests(tmp_path) -> None:
    index = tmp_path / "index.html"
    shutil.copyfile(SHIPPED, index)
    before = index.read_text()
    assert hide_unit_tests(index) is True
    after = index.read_text()
    start = after.index(DEFAULT_TYPES) + len(DEFAULT_TYPES)
    default = after[start : after.index("]", start)]
    assert '"unit_test"' not in default and '"model"' in default and '"source"' in default
    # One default changed, nothing else: the filter still offers unit tests, their pages stay.
    assert len(before) - len(after) == len('"unit_test",')
    assert after.count('"unit_test"') == before.count('"unit_test"') - 1
    assert hide_unit_tests(index) is False  # a second make docs changes nothing


def test_a_page_from_another_dbt_is_left_alone(tmp_path) -> None:
    index = tmp_path / "index.html"
    index.write_text("<html>another dbt's docs</html>")
    with pytest.raises(DocsPageChanged):
        hide_unit_tests(index)
    assert index.read_text() == "<html>another dbt's docs</html>"
