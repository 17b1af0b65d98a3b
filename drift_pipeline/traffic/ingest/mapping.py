"""Where tenant, agent, workflow type and agent step come from in traces and exports of other tools.

Tracing tools carry these as free-form attributes or metadata keys whose names each platform chooses, so
the keys are configurable (`--tenant-attribute` etc.). The first key present wins; the run's `--tenant` and
`--agent` fill what no key gives. A record naming another tenant than the run's is quarantined downstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_TENANT_KEYS = ("tenant.id", "tenant_id", "tenant")
DEFAULT_AGENT_KEYS = ("agent.id", "agent_id", "gen_ai.agent.name", "gen_ai.agent.id")
DEFAULT_WORKFLOW_KEYS = ("workflow.type", "workflow_type")
DEFAULT_STEP_KEYS = ("agent.step", "agent_step")


@dataclass(frozen=True)
class AttributeMapping:
    """Keys, in order of preference, naming each of our scoping fields."""

    tenant: Sequence[str] = DEFAULT_TENANT_KEYS
    agent: Sequence[str] = DEFAULT_AGENT_KEYS
    workflow: Sequence[str] = DEFAULT_WORKFLOW_KEYS
    step: Sequence[str] = DEFAULT_STEP_KEYS

    @classmethod
    def with_overrides(
        cls,
        tenant: str | None = None,
        agent: str | None = None,
        workflow: str | None = None,
        step: str | None = None,
    ) -> AttributeMapping:
        """The defaults, with a user-named key tried first for each field given."""

        def first(key: str | None, defaults: Sequence[str]) -> Sequence[str]:
            return (key, *defaults) if key else defaults

        return cls(
            first(tenant, DEFAULT_TENANT_KEYS),
            first(agent, DEFAULT_AGENT_KEYS),
            first(workflow, DEFAULT_WORKFLOW_KEYS),
            first(step, DEFAULT_STEP_KEYS),
        )

    def scope(self, *sources: Mapping[str, Any]) -> dict[str, Any]:
        """tenant_id / agent_id / workflow_type / agent_step found in `sources` (earlier sources win)."""
        out: dict[str, Any] = {}
        for field, keys in (
            ("tenant_id", self.tenant),
            ("agent_id", self.agent),
            ("workflow_type", self.workflow),
            ("agent_step", self.step),
        ):
            value = lookup(keys, *sources)
            if value is not None:
                out[field] = value
        return out


def lookup(keys: Sequence[str], *sources: Mapping[str, Any]) -> Any:
    """The first non-empty value of any key in any source, sources taking precedence in order."""
    for source in sources:
        for key in keys:
            value = source.get(key)
            if value not in (None, ""):
                return value
    return None
