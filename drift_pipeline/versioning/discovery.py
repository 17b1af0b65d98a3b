"""Model discovery: poll providers' model lists, diff them against the registry, apply what is new.

Sources (`ProviderSource.kind`):

- ``offline``: the in-process SmolLM2 provider (always reachable; the wiring passes the ids it serves);
- ``openai-compatible``: ``GET {api_base}/models`` (vLLM, llama.cpp's server, Ollama, a LiteLLM proxy);
- ``litellm``: the models litellm knows for a hosted provider (its bundled, local model map).

An alias's resolution cannot be read from a model list, so for the aliases a source names (and, if asked,
every registry alias of that provider) discovery asks an alias resolver, which the caller passes in:
`detection.probes.litellm_alias_resolver` sends a one-token completion and reads the response's ``model``
field, what the provider actually served.

**Family.** Two ids are in one family when they share the provider and the id prefix up to the
date/version suffix (`gpt-4-0613` and `gpt-4-1106` are family `gpt-4`; `claude-3-5-sonnet-20241022` is
family `claude-3-5-sonnet`), or when one alias has resolved to both. A hosted provider's list is huge, so
from ``litellm`` sources only ids in a family the registry already holds are registered; an
``openai-compatible`` or ``offline`` source is the operator's own endpoint, so everything it lists is.

**Hostile lists.** A listed (or served) id that breaks the model-id rule (`identifiers.check_model_id`:
``../../x``, a newline, a backslash, 500 characters) is skipped and reported in `DiscoveryDiff.errors`,
never registered, so it can reach neither the registry nor a path built from a model id.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx

from drift_pipeline.errors import DriftPipelineError, InvalidInputError, NotFoundError
from drift_pipeline.identifiers import check_model_id, check_provider
from drift_pipeline.versioning.model_ids import family

if TYPE_CHECKING:
    from drift_pipeline.persistence.db import Store
    from drift_pipeline.versioning.manifests import Manifest
    from drift_pipeline.versioning.registry import VersionInfo

Kind = Literal["offline", "openai-compatible", "litellm"]
KINDS: tuple[str, ...] = ("offline", "openai-compatible", "litellm")

# (provider, alias, litellm params) -> the model id the provider served for it.
AliasResolver = Callable[[str, str, dict[str, Any]], str]


@dataclass(frozen=True)
class ProviderSource:
    """One place to poll for models."""

    provider: str
    kind: Kind
    api_base: str | None = None
    api_key_env: str | None = None
    aliases: tuple[str, ...] = ()  # resolve these through a 1-token completion every tick
    resolve_registry_aliases: bool = False  # also every registry alias whose version has this provider
    register_all: bool | None = None  # None: everything for offline/openai-compatible, families for litellm
    timeout_s: float = 10.0
    models: tuple[str, ...] = ()  # offline: the ids the in-process provider serves (the wiring supplies them)

    def __post_init__(self) -> None:
        check_provider(self.provider)
        for alias in self.aliases:
            check_model_id(alias, "alias")
        if self.kind not in KINDS:
            raise InvalidInputError(f"provider source kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if self.kind == "openai-compatible" and not self.api_base:
            raise InvalidInputError(f"provider source {self.provider!r}: an openai-compatible source needs api_base")

    @property
    def registers_all(self) -> bool:
        return self.register_all if self.register_all is not None else self.kind != "litellm"

    @property
    def litellm_params(self) -> dict[str, Any]:
        """What a version found here needs to be called (stored with it in the registry)."""
        params: dict[str, Any] = {}
        if self.api_base:
            params["api_base"] = self.api_base
        if self.api_key_env:
            params["api_key_env"] = self.api_key_env
        return params

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.provider}" + (f"@{self.api_base}" if self.api_base else "")


@dataclass(frozen=True)
class Observation:
    """What one source said this tick."""

    source: ProviderSource
    models: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)  # alias -> served model id
    error: str | None = None


@dataclass(frozen=True)
class NewVersion:
    provider: str
    model_id: str
    family: str
    source: str
    litellm_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AliasMove:
    alias: str
    provider: str
    old_model_id: str | None
    new_model_id: str
    source: str


@dataclass
class DiscoveryDiff:
    new_versions: list[NewVersion] = field(default_factory=list)
    alias_moves: list[AliasMove] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.new_versions or self.alias_moves)


# ------------------------------------------------------------------------------------------- sources


def load_sources(path: str | Path | None = None) -> list[ProviderSource]:
    """Sources from `path`, `$DRIFT_PIPELINE_PROVIDERS_CONFIG` or `<home>/providers.yaml` (none when absent).

    The file is a list of mappings with the `ProviderSource` fields (`aliases` as a list).
    """
    import yaml

    from drift_pipeline.config import Settings

    explicit = path or Settings.from_env().providers_config
    file = Path(explicit) if explicit else Settings.from_env().home / "providers.yaml"
    if not file.exists():
        if explicit:
            raise NotFoundError(f"provider sources file {str(file)!r} does not exist")
        return []
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or []
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInputError(f"provider sources file {str(file)!r} is not readable YAML: {exc}") from exc
    if not isinstance(data, list):
        raise InvalidInputError(f"provider sources file {str(file)!r} must be a list of sources")
    return [source_from_dict(item, where=str(file)) for item in data]


def source_from_dict(item: Any, *, where: str = "provider sources") -> ProviderSource:
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where}: each source must be a mapping, got {item!r}")
    unknown = set(item) - set(ProviderSource.__dataclass_fields__)
    if unknown:
        raise InvalidInputError(f"{where}: unknown source keys: {', '.join(sorted(unknown))}")
    try:
        return ProviderSource(**{**item, "aliases": tuple(item.get("aliases") or ())})
    except TypeError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def default_sources(versions: Iterable[VersionInfo], *, offline_models: Sequence[str] = ()) -> list[ProviderSource]:
    """Sources implied by the registry: the offline provider, and each distinct `api_base` of a version."""
    sources: dict[str, ProviderSource] = {"offline": ProviderSource("offline", "offline", models=tuple(offline_models))}
    for v in versions:
        base = v.litellm_params.get("api_base")
        if base:
            src = ProviderSource(v.provider, "openai-compatible", base, v.litellm_params.get("api_key_env"))
            sources.setdefault(src.name, src)
    return list(sources.values())


def list_models(source: ProviderSource, client: httpx.Client | None = None) -> list[str]:
    """Model ids the source offers now (bare ids, no `provider/` prefix)."""
    if source.kind == "offline":
        return list(source.models)
    if source.kind == "litellm":
        import litellm

        known = litellm.models_by_provider.get(source.provider)
        if known is None:
            raise NotFoundError(f"litellm knows no provider {source.provider!r}")
        return sorted({m.removeprefix(f"{source.provider}/") for m in known})
    return _openai_models(source, client)


def _openai_models(source: ProviderSource, client: httpx.Client | None) -> list[str]:
    url = f"{(source.api_base or '').rstrip('/')}/models"
    headers = {}
    if source.api_key_env and os.environ.get(source.api_key_env):
        headers["Authorization"] = f"Bearer {os.environ[source.api_key_env]}"
    own = client is None
    http = client or httpx.Client(timeout=source.timeout_s)
    try:
        response = http.get(url, headers=headers, timeout=source.timeout_s)
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise DriftPipelineError(f"GET {url} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if own:
            http.close()
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DriftPipelineError(f"GET {url}: expected an OpenAI model list ({{'data': [...]}}), got {str(data)[:80]}")
    return sorted({str(m["id"]) for m in items if isinstance(m, dict) and m.get("id")})


def observe(
    sources: Sequence[ProviderSource],
    *,
    registry_aliases: dict[str, tuple[str, str]] | None = None,
    resolve_alias: AliasResolver | None = None,
    client: httpx.Client | None = None,
) -> list[Observation]:
    """Poll every source; a failing source becomes an `Observation.error`, never an exception.

    `registry_aliases` maps alias -> (provider, model id) today, for sources with `resolve_registry_aliases`.
    """
    observations = []
    for source in sources:
        try:
            models = tuple(list_models(source, client))
            wanted = list(source.aliases)
            if source.resolve_registry_aliases:
                wanted += [a for a, (p, _) in (registry_aliases or {}).items() if p == source.provider]
            resolved = {}
            if wanted and resolve_alias is None:
                raise DriftPipelineError(
                    "aliases to resolve but no alias resolver (detection.probes.litellm_alias_resolver)"
                )
            for alias in dict.fromkeys(wanted):
                resolved[alias] = resolve_alias(source.provider, alias, source.litellm_params)  # type: ignore[misc]
            observations.append(Observation(source, models, resolved))
        except Exception as exc:  # one unreachable provider must not hide the others' news
            observations.append(Observation(source, error=f"{source.name}: {type(exc).__name__}: {exc}"))
    return observations


# -------------------------------------------------------------------------------------------- diffing


def diff(
    observations: Sequence[Observation], versions: Sequence[VersionInfo], aliases: dict[str, str]
) -> DiscoveryDiff:
    """New versions and moved aliases, relative to the registry (`aliases`: alias -> model id today)."""
    from drift_pipeline.versioning.alias_scan import classify

    registered = {v.model_id: v for v in versions}
    families = {(v.provider, family(v.model_id)) for v in versions}
    families |= {(registered[m].provider, family(a)) for a, m in aliases.items() if m in registered}
    result = DiscoveryDiff()
    queued: set[str] = set()

    def add(source: ProviderSource, model_id: str) -> None:
        if model_id in registered or model_id in queued or model_id in aliases:
            return
        queued.add(model_id)
        result.new_versions.append(
            NewVersion(source.provider, model_id, family(model_id), source.name, source.litellm_params)
        )

    for obs in observations:
        if obs.error:
            result.errors.append(obs.error)
            continue
        source = obs.source
        refused = [m for m in [*obs.models, *obs.aliases.values()] if not _follows_rule(m)]
        if refused:  # dropped before anything else reads them: never matched, never registered
            result.errors.append(_refusal(source, refused))
        skip = set(refused)
        for model_id in obs.models:
            if model_id in skip:
                continue
            if model_id in obs.aliases or classify(model_id, aliases, frozenset(registered)) is not None:
                continue  # a moving name is never registered as a version
            if source.registers_all or (source.provider, family(model_id)) in families:
                add(source, model_id)
        for alias, served in obs.aliases.items():
            if not served or served == alias or aliases.get(alias) == served or served in skip:
                continue
            add(source, served)
            result.alias_moves.append(AliasMove(alias, source.provider, aliases.get(alias), served, source.name))
    return result


def _follows_rule(model_id: str) -> bool:
    try:
        check_model_id(model_id)
    except InvalidInputError:
        return False
    return True


def _refusal(source: ProviderSource, refused: list[str], shown: int = 3) -> str:
    """One line naming the source and the first few ids it listed that break the model-id rule."""
    more = f" and {len(refused) - shown} more" if len(refused) > shown else ""
    first = ", ".join(repr(m[:80]) for m in refused[:shown])
    return f"{source.name}: skipped {len(refused)} id(s) that break the model-id rule: {first}{more}"


def apply(store: Store, changes: DiscoveryDiff, *, actor: str) -> DiscoveryDiff:
    """Register the new versions and move the aliases (audited); returns what actually changed."""
    from drift_pipeline.errors import RefusedError
    from drift_pipeline.versioning import registry

    done = DiscoveryDiff(errors=list(changes.errors))
    for new in changes.new_versions:
        try:
            registry.add_version(
                store,
                new.provider,
                new.model_id,
                actor=actor,
                litellm_params=new.litellm_params,
                reason=f"listed by {new.source}",
            )
            done.new_versions.append(new)
        except (RefusedError, InvalidInputError) as exc:  # registered meanwhile, or an id the rule refuses
            done.errors.append(str(exc))
    for move in changes.alias_moves:
        reason = f"{move.source} served {move.new_model_id} for {move.alias} (was {move.old_model_id or 'unset'})"
        if registry.set_alias(store, move.alias, move.new_model_id, actor=actor, observed_by=actor, reason=reason):
            done.alias_moves.append(move)
    return done


# ------------------------------------------------------------------------------------ who is affected


def pinned_in_family(
    manifests: Iterable[Manifest],
    providers: dict[str, str],
    model_id: str,
    *,
    alias_versions: Iterable[str] = (),
) -> dict[str, set[str]]:
    """Tenant -> pinned version ids in `model_id`'s family (same provider and id prefix, or one alias's versions).

    `providers` maps every registered model id to its provider; `alias_versions` are the ids an alias has
    resolved to (its history), which count as one family whatever their names.
    """
    provider = providers.get(model_id)
    fam = family(model_id)
    linked = set(alias_versions)
    tenants: dict[str, set[str]] = {}
    for m in manifests:
        pinned = m.pinned_model_id
        if pinned == model_id:
            continue  # already on it: nothing to compare
        same_prefix = providers.get(pinned) == provider and family(pinned) == fam
        if same_prefix or pinned in linked:
            tenants.setdefault(m.tenant_id, set()).add(pinned)
    return tenants
