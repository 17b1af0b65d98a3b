"""Test configuration: offline settings and the fixture plugins (`plugins/`), one per pillar or fake service."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

pytest_plugins = [
    "drift_pipeline_tests.plugins.persistence",
    "drift_pipeline_tests.plugins.scoring",
    "drift_pipeline_tests.plugins.replay",
    "drift_pipeline_tests.plugins.traffic",
    "drift_pipeline_tests.plugins.alerts",
    "drift_pipeline_tests.plugins.migration",
    "drift_pipeline_tests.plugins.providers",
    "drift_pipeline_tests.plugins.cli",
    "drift_pipeline_tests.plugins.deployment",
]
