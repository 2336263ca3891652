"""Historical data in, synthetic patients out: schema, import, built-in cohorts, generators.

``cohorts`` knows nothing of trials or analysis (data flows cohorts -> trials -> analysis).
"""

from cohorts.cohort import Cohort
from cohorts.errors import (InvalidDataError, InvalidScenarioError, NotFittedError, UnknownNameError,
                            WorkbenchError)
from cohorts.io import cohort_from_frame, load_cohort, read_table, validate
from cohorts.schema import CohortSchema, OutcomeSpec

__all__ = ["Cohort", "CohortSchema", "OutcomeSpec", "load_cohort", "cohort_from_frame", "read_table", "validate",
           "WorkbenchError", "InvalidDataError", "InvalidScenarioError", "NotFittedError", "UnknownNameError"]
