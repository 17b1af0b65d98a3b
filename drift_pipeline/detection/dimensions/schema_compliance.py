"""Schema compliance: the response is JSON valid against the agent's response schema."""

from __future__ import annotations

import functools
import json
from typing import Any

from drift_pipeline.detection.dimensions.base import Dimension, PairContext, Value, parse_json_text


@functools.lru_cache(maxsize=64)
def _validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validator_for(schema: dict[str, Any]) -> Any:
    """A compiled, cached jsonschema validator (raises SchemaError on a schema that is not JSON Schema)."""
    return _validator(json.dumps(schema, sort_keys=True))


class SchemaCompliance(Dimension):
    name = "schema_compliance"
    kind = "binary"
    order = 31
    applies_when = "a response schema"
    description = "the response is JSON that validates against the agent's response schema"

    def value(self, text: str, tool_calls: list[dict[str, Any]] | None, pair: PairContext) -> Value:
        if pair.response_schema is None:
            return None
        ok, data = parse_json_text(text)
        return float(ok and validator_for(pair.response_schema).is_valid(data))


DIMENSION = SchemaCompliance()
