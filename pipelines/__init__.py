"""The one definition of the pipelines: which sources exist and the steps that land each.

``make run`` (``stack.run``) runs these steps in-process, and the Airflow DAG
factories (``airflow/include``) render the same steps as tasks, so a new
source is one new module in ``pipelines/sources/`` (plus its loader package
and its dbt models), found there, not an edit to two orchestrations.
"""

from pipelines.definition import Landed, Source, Step, StepContext, run_source
from pipelines.sources import COMBINED_TRANSFORMS, OTHER_DBT_TARGETS, SOURCES, SOURCES_BY_NAME

__all__ = [
    "COMBINED_TRANSFORMS",
    "OTHER_DBT_TARGETS",
    "SOURCES",
    "SOURCES_BY_NAME",
    "Landed",
    "Source",
    "Step",
    "StepContext",
    "run_source",
]
