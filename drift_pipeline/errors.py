"""User-facing errors: each carries a one-line message the CLI prints without a traceback."""


class DriftPipelineError(Exception):
    """Base class for every error a user can cause (bad input, unknown ids, refused actions)."""


class NotFoundError(DriftPipelineError):
    """A tenant, agent, model, manifest revision or record does not exist."""


class RefusedError(DriftPipelineError):
    """The request is well-formed but breaks a rule (an alias in a pin, an illegal transition)."""


class InvalidInputError(DriftPipelineError):
    """Malformed input: bad JSON/YAML, a schema that is not JSON Schema, a value out of range."""


class IntegrityError(DriftPipelineError):
    """Stored data failed verification (a broken audit hash chain)."""
