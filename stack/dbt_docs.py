"""``python -m stack.dbt_docs``: the dbt docs site's lineage opens without the unit tests.

dbt's docs site draws every unit test as a node beside its model, which
doubles the graph this project's unit tests cover. After ``dbt docs
generate``, ``make docs`` changes one default in the site's page: the
lineage's resource-type filter starts with unit tests unticked. Their pages
stay, and ticking "Unit Tests" in the filter shows them again.
"""

from __future__ import annotations

import sys
from pathlib import Path

from config import DbtSettings

# The lineage selector's default (dbt-docs' selectorService), as dbt 1.11 ships it.
DEFAULT_TYPES = '{include:"",exclude:"",packages:[],tags:[null],resource_types:['
UNIT_TEST = '"unit_test",'


class DocsPageChanged(RuntimeError):
    """The docs page is not the one this step knows (a dbt upgrade): nothing was changed."""


def hide_unit_tests(index: Path) -> bool:
    """Untick unit tests in the lineage's default filter; False if already done."""
    page = index.read_text()
    start = page.find(DEFAULT_TYPES)
    if start < 0:
        raise DocsPageChanged(f"{index}: the lineage filter's default is not where dbt 1.11 has it")
    end = page.index("]", start + len(DEFAULT_TYPES))
    types = page[start + len(DEFAULT_TYPES) : end]
    if UNIT_TEST not in types:
        return False
    patched = types.replace(UNIT_TEST, "", 1)
    index.write_text(page[: start + len(DEFAULT_TYPES)] + patched + page[end:])
    return True


def main() -> int:
    index = DbtSettings.from_env().target_path / "index.html"
    try:
        hide_unit_tests(index)
    except (OSError, DocsPageChanged) as exc:
        print(f"make docs: {exc}; the lineage shows unit tests", file=sys.stderr)
        return 0  # the site still works, with unit tests drawn
    return 0


if __name__ == "__main__":
    sys.exit(main())
