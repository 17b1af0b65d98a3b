"""Dagster wiring: assets, checks, sensors, schedules and resources over the plain-Python core.

The partitioned checks and the tenant partition mapping are Dagster preview/beta APIs, said once in
docs/operations.md: every process that loads the code location (code server, run workers, the demo)
would otherwise repeat the same warnings on every import.
"""

import warnings

from dagster import BetaWarning, PreviewWarning

warnings.filterwarnings("ignore", category=BetaWarning)
warnings.filterwarnings("ignore", category=PreviewWarning)
