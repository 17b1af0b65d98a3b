"""Test configuration: offline settings and the fixture plugins (`plugins/`), one per pillar or fake service."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The persistent embedding store would otherwise carry vectors between tests (and into ./.drift-pipeline for
# tests without a `home`); the tests of the store switch it on for themselves.
os.environ.setdefault("DRIFT_PIPELINE_EMBEDDING_STORE", "false")

pytest_plugins = [
    "drift_pipeline_tests.plugins.persistence",
    "drift_pipeline_tests.plugins.scoring",
    "drift_pipeline_tests.plugins.replay",
    "drift_pipeline_tests.plugins.latency_server",
    "drift_pipeline_tests.plugins.traffic",
    "drift_pipeline_tests.plugins.alerts",
    "drift_pipeline_tests.plugins.migration",
    "drift_pipeline_tests.plugins.providers",
    "drift_pipeline_tests.plugins.cli",
    "drift_pipeline_tests.plugins.embedding_server",
    "drift_pipeline_tests.plugins.browser",
    "drift_pipeline_tests.plugins.deployment",
]
