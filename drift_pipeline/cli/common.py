"""Helpers every command group shares: the store, the acting user, consoles, parsing."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, ConsoleDimensions

from drift_pipeline.errors import InvalidInputError

if TYPE_CHECKING:
    from drift_pipeline.persistence.db import Store

# Width when the output is not a terminal (a pipe, a file, a test runner): wide enough that tables and
# lines never wrap or crop at whatever COLUMNS the environment happens to set.
PIPE_WIDTH = 200


class _Console(Console):
    """A rich console that follows the terminal's width, and a fixed generous one anywhere else."""

    @property
    def size(self) -> ConsoleDimensions:
        real = super().size
        return real if self.is_terminal else ConsoleDimensions(max(real.width, PIPE_WIDTH), real.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        Console.size.fset(self, new_size)  # type: ignore[attr-defined]


console = _Console()
err_console = _Console(stderr=True, soft_wrap=True)


def open_store() -> Store:
    """The store the environment names (SQLite under DRIFT_PIPELINE_HOME by default), migrated."""
    from drift_pipeline.persistence.db import Store  # SQLAlchemy: only for commands that use the store

    return Store.open()


def actor() -> str:
    """Who is acting, for the audit log: DRIFT_PIPELINE_ACTOR, else the OS user."""
    from drift_pipeline.config import Settings

    return Settings.from_env().actor or f"cli:{getpass.getuser()}"


def parse_date(value: str | None, what: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"{what} {value!r} is not a date (use YYYY-MM-DD)") from exc


def parse_datetime(value: str | None, what: str) -> datetime | None:
    """Parse an ISO date or datetime; naive values are taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(f"{what} {value!r} is not a date or time (use YYYY-MM-DD or ISO 8601)") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout, no colour."""
    print(json.dumps(data, indent=2, default=str, sort_keys=True))
