"""The one identifier rule for tenant, agent, dataset and batch ids, provider names and model ids.

Ids become object-storage prefixes (``tenant=<id>/``), SQL keys and Dagster partition keys, so one rule
keeps them safe everywhere: lowercase letters, digits, ``_``, ``.`` and ``-``, starting with a letter or
digit, no ``..``, at most 100 characters. No ``/``, ``\\``, ``|``, ``,``, whitespace or control character
can reach a path or a partition key. Provider names follow the same rule (``openai``, ``hosted_vllm``).

Model ids are the provider's names and legitimately hold capitals, ``:``, ``@``, ``+`` and ``/``
(``anthropic.claude-v2:1``, ``text-bison@001``, ``meta-llama/Llama-3.1-8B-Instruct``,
``ft:gpt-4o-mini-2024-07-18:org::abc``), so they have a wider rule (`check_model_id`) and are **never**
joined into a path raw: `model_key` turns one into a single safe path segment (the id itself when it
already follows the identifier rule, else a readable stem plus a hash of the whole id).

Every pattern is applied with ``fullmatch``: ``re.match(...$)`` would accept a trailing newline.
"""

from __future__ import annotations

import hashlib
import re

from drift_pipeline.errors import InvalidInputError

MAX_LENGTH = 100
MODEL_ID_MAX_LENGTH = 200
_IDENTIFIER = re.compile(rf"[a-z0-9][a-z0-9_.-]{{0,{MAX_LENGTH - 1}}}")
# Printable ASCII a provider uses in model names; no whitespace, backslash, quote or control character.
_MODEL_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:@+/-]{{0,{MODEL_ID_MAX_LENGTH - 1}}}")
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
_STEM = 48  # readable characters kept in front of the hash of a model id that is not a plain identifier


def is_identifier(value: object) -> bool:
    """True when `value` follows the identifier rule."""
    return isinstance(value, str) and bool(_IDENTIFIER.fullmatch(value)) and ".." not in value


def check_identifier(value: str, what: str) -> str:
    """Return `value` if it is a safe identifier, else raise `InvalidInputError` naming `what`."""
    if not is_identifier(value):
        raise InvalidInputError(
            f"invalid {what} {value!r}: use lowercase letters, digits, '.', '_' or '-', "
            f"starting with a letter or digit, no '..' (max {MAX_LENGTH})"
        )
    return value


def check_provider(value: str) -> str:
    """A provider name (`openai`, `hosted_vllm`): the identifier rule."""
    return check_identifier(value, "provider")


def check_model_id(value: str, what: str = "model id") -> str:
    """Return `value` if it is an acceptable model id (or alias), else raise `InvalidInputError`.

    Letters of either case, digits and ``_ . : @ + - /``, starting with a letter or digit, at most
    200 characters; no ``..``, no empty ``/`` segment and no trailing ``/`` (so no segment can climb).
    """
    ok = (
        isinstance(value, str)
        and bool(_MODEL_ID.fullmatch(value))
        and ".." not in value
        and "//" not in value
        and not value.endswith("/")
    )
    if not ok:
        raise InvalidInputError(
            f"invalid {what} {value!r}: use letters, digits and '_.:@+-/', starting with a letter or digit, "
            f"no '..' or empty '/' segment (max {MODEL_ID_MAX_LENGTH})"
        )
    return value


def model_key(model_id: str) -> str:
    """One safe path segment for a model id: the id when it is a plain identifier, else stem + hash.

    The hashed form starts with ``_``, which no identifier does, so two ids never share a segment.
    """
    check_model_id(model_id)
    if is_identifier(model_id):
        return model_id
    digest = hashlib.sha256(model_id.encode("utf-8")).hexdigest()[:20]
    stem = _UNSAFE.sub("-", model_id.lower()).replace("..", "-")[:_STEM].strip("-.")
    return f"_{stem}-{digest}"
