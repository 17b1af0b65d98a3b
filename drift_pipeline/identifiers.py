"""The one identifier rule for tenant, agent, dataset and batch ids.

Ids become object-storage prefixes (``tenant=<id>/``), SQL keys and Dagster partition keys, so one rule
keeps them safe everywhere: lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
digit, no ``..``, at most 100 characters. No ``/``, ``|``, ``,`` or whitespace can reach a path or a
partition key.
"""

from __future__ import annotations

import re

from drift_pipeline.errors import InvalidInputError

MAX_LENGTH = 100
# fullmatch, not match with '$': '$' also matches before a trailing newline, which must never pass.
_IDENTIFIER = re.compile(rf"[a-z0-9][a-z0-9_.-]{{0,{MAX_LENGTH - 1}}}")


def check_identifier(value: str, what: str) -> str:
    """Return `value` if it is a safe identifier, else raise `InvalidInputError` naming `what`."""
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value) or ".." in value:
        raise InvalidInputError(
            f"invalid {what} {value!r}: use lowercase letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, no '..' (max {MAX_LENGTH})"
        )
    return value
