"""Model ids: the one parser of a provider prefix and the date/version suffix that pins a snapshot.

`openai/gpt-4-0613` is family `gpt-4` with suffix `-0613`; `claude-3-5-sonnet-20241022` is family
`claude-3-5-sonnet`; `gpt-4o-2024-08-06` is `gpt-4o`; `anthropic.claude-v2:1` and `text-bison@001` carry
version suffixes too. A trailing `-latest` is stripped from the family but pins nothing: it moves.
"""

from __future__ import annotations

import re

LATEST = "-latest"
# Dates (-2024-08-06, -20241022), short versions (-0613, -001), Vertex (@001), Bedrock (-v1:0), -latest.
_SUFFIX = re.compile(r"(-\d{4}-\d{2}-\d{2}|-\d{8}|-\d{4}|-\d{3}|@\d+|-v\d+(:\d+)?|-latest)\Z")


def bare(model_id: str) -> str:
    """The id without a `provider/` prefix."""
    return model_id.rsplit("/", 1)[-1]


def split_version(model_id: str) -> tuple[str, str]:
    """(family, suffix) of the bare id; the suffix is '' when there is none (or nothing precedes it)."""
    name = bare(model_id)
    match = _SUFFIX.search(name)
    if match is None or match.start() == 0:
        return name, ""
    return name[: match.start()], match.group()


def family(model_id: str) -> str:
    """The bare id without its date/version suffix (`gpt-4o-2024-08-06` -> `gpt-4o`)."""
    return split_version(model_id)[0]


def is_snapshot(model_id: str) -> bool:
    """True when the id ends in a date or version suffix, i.e. names one exact snapshot (`-latest` does not)."""
    suffix = split_version(model_id)[1]
    return bool(suffix) and suffix != LATEST
