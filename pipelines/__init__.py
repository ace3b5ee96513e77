"""The one definition of the pipelines: which sources exist and the steps that land each.

``make run`` (``stack.run``) runs these steps in-process, and the Airflow DAG
factories (``airflow/include``) render the same steps as tasks, so a new
source is one new entry in ``pipelines.sources.SOURCES`` (plus its loader
subpackage and its dbt models), not an edit to two orchestrations.
"""

from pipelines.definition import Landed, Source, Step, StepContext, run_source
from pipelines.sources import COMBINED_TRANSFORMS, SOURCES, SOURCES_BY_NAME

__all__ = [
    "COMBINED_TRANSFORMS",
    "SOURCES",
    "SOURCES_BY_NAME",
    "Landed",
    "Source",
    "Step",
    "StepContext",
    "run_source",
]
