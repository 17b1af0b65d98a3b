"""A command group that imports a command's module only when that command is asked for.

Every command module pulls in its pillar (SQLAlchemy, pandas, the migration and versioning code): importing
all of them made every invocation, `compare` included, pay for all of them. The group knows each top-level
command's module by name, and imports the module on first lookup of one of its commands. Listing the
commands (`--help`) imports none of them: the group shows each command's summary from `summaries` (the
first paragraph of its help, tested equal to it), so the first thing a new user types answers at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup


class LazyGroup(TyperGroup):
    """A TyperGroup whose commands named in `lazy` (command -> module) are loaded on demand.

    Each module exposes `register(app)`, as eager modules do; the commands it registers are added here.
    """

    lazy: ClassVar[Mapping[str, str]] = {}
    summaries: ClassVar[Mapping[str, str]] = {}
    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in self.lazy if name not in self.commands)]

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True  # the help table reads each command's summary only: placeholders will do
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            if self._listing and cmd_name in self.summaries:
                return TyperCommand(cmd_name, help=self.summaries[cmd_name])
            self._load(self.lazy[cmd_name])
        return self.commands.get(cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in self.commands and args[0] not in self.lazy:
            # A mistyped command: typer draws its "did you mean" from the loaded commands, so load them all.
            for module_name in dict.fromkeys(self.lazy.values()):
                self._load(module_name)
        return super().resolve_command(ctx, args)

    def _load(self, module_name: str) -> None:
        module = importlib.import_module(module_name)
        holder = typer.Typer()
        module.register(holder)
        for name, command in typer.main.get_group(holder).commands.items():
            self.commands.setdefault(name, command)


def lazy_group(commands: Mapping[str, str], summaries: Mapping[str, str]) -> type[LazyGroup]:
    """A LazyGroup class bound to `commands` and their `summaries` (typer instantiates the class itself, so
    the class carries the maps)."""
    return type("DriftPipelineGroup", (LazyGroup,), {"lazy": dict(commands), "summaries": dict(summaries)})
