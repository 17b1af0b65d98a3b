"""Behavioural dimensions, discovered from the modules of this package.

Adding a dimension is one module here that defines a `Dimension` subclass and exposes an instance as
the module-level name `DIMENSION`; nothing else needs editing.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from drift_pipeline.detection.dimensions.base import Dimension, Kind, PairContext, ScoringEnv, Value
from drift_pipeline.errors import InvalidInputError

__all__ = ["Dimension", "Kind", "PairContext", "ScoringEnv", "Value", "all_dimensions", "get_dimension", "select"]

_NOT_DIMENSIONS = {"base"}


@functools.cache
def _registry() -> dict[str, Dimension]:
    found: dict[str, Dimension] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name in _NOT_DIMENSIONS or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        dimension = getattr(module, "DIMENSION", None)
        if isinstance(dimension, Dimension):
            if dimension.name in found:
                raise RuntimeError(f"two dimension modules define {dimension.name!r}")
            found[dimension.name] = dimension
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def all_dimensions() -> list[Dimension]:
    """Every registered dimension, in report order."""
    return list(_registry().values())


def get_dimension(name: str) -> Dimension:
    try:
        return _registry()[name]
    except KeyError:
        known = ", ".join(_registry())
        raise InvalidInputError(f"unknown dimension {name!r} (known: {known})") from None


def select(names: list[str] | tuple[str, ...] | None) -> list[Dimension]:
    """The named dimensions (all when `names` is None)."""
    return all_dimensions() if names is None else [get_dimension(n) for n in names]
