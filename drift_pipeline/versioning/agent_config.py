"""The agent config versioned with a pin (prompt, tools, schema, memory, workflows, decoding), validated.

A config file comes from an operator or a tenant and is treated as hostile: its size and nesting depth are
bounded before it is parsed, YAML anchors and aliases are refused (a 369-byte "billion laughs" document
once expanded to 39 MB), and the result is checked against typed pydantic models: strings are strings,
decoding parameters are known, typed and finite, nothing is nested without bound. Credentials are never
accepted inside a config (a key named like `api_key`, `*_key`, `token`, `password`, `secret` or
`authorization` is refused): the runtime takes them from the environment or a secret store by reference.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from drift_pipeline.errors import InvalidInputError

MAX_CONFIG_BYTES = 256 * 1024
MAX_DEPTH = 32  # of the whole document; schemas of tools nest, but not this deep
MAX_MEMORY_CONFIG_BYTES = 16 * 1024
MAX_MEMORY_DEPTH = 8
MAX_PROMPT_CHARS = 100_000
# Key words that name a credential; `max_tokens` is not `token`, but `api_key`, `routing_key` and `x-token` are.
_SECRET_WORDS = frozenset(
    {"apikey", "password", "passwd", "passphrase", "secret", "token", "authorization", "auth", "credential",
     "credentials", "bearer", "cookie", "privatekey", "accesskey", "secretkey", "sessionkey"}
)  # fmt: skip
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def secret_looking(key: str) -> bool:
    """True for a key that names a credential (`api_key`, `openai_key`, `x-auth-token`, `Password`)."""
    words = [w for w in _WORD_SPLIT.split(_CAMEL.sub(r"\1_\2", key).lower()) if w]
    if not words:
        return False
    joined = "".join(words)
    return bool(_SECRET_WORDS.intersection(words)) or joined in _SECRET_WORDS or (len(words) > 1 and words[-1] == "key")


Probability = Annotated[float, Field(ge=0, le=1)]
Penalty = Annotated[float, Field(ge=-2, le=2)]


class DecodingParams(BaseModel):
    """The decoding parameters a manifest may pin: known names, typed, finite, in range."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Probability | None = None
    top_k: Annotated[int, Field(ge=1, le=100_000)] | None = None
    min_p: Probability | None = None
    max_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, Field(gt=0, le=10)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] | None = None
    stop: Annotated[str, Field(max_length=256)] | Annotated[list[str], Field(max_length=16)] | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: Annotated[str, Field(pattern=r"^(minimal|low|medium|high)$")] | None = None
    response_format: dict[str, Any] | None = None


class AgentConfigModel(BaseModel):
    """The typed shape of an agent config; `AgentConfig` is its immutable value."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    system_prompt: Annotated[str, Field(max_length=MAX_PROMPT_CHARS)] = ""
    tools: Annotated[list[dict[str, Any]], Field(max_length=128)] = Field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    memory_config: dict[str, Any] = Field(default_factory=dict)
    workflow_types: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=64)] = Field(
        default_factory=list
    )
    decoding: DecodingParams = Field(default_factory=DecodingParams)

    @field_validator("memory_config")
    @classmethod
    def _bounded_memory(cls, value: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(value, default=str))
        if size > MAX_MEMORY_CONFIG_BYTES:
            raise ValueError(f"is {size} bytes as JSON; the limit is {MAX_MEMORY_CONFIG_BYTES}")
        return value


@dataclass(frozen=True)
class AgentConfig:
    """What is versioned with the pin: prompt, tools, response schema, memory, workflows, decoding."""

    system_prompt: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    response_schema: dict[str, Any] | None = None
    memory_config: dict[str, Any] = field(default_factory=dict)
    workflow_types: list[str] = field(default_factory=list)
    decoding: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, *, schemas: bool = True) -> AgentConfig:
        """Validate a parsed config mapping (one-line `InvalidInputError` for anything wrong); `schemas`
        also checks that tool parameters and the response schema are JSON Schema."""
        if not isinstance(data, dict):
            raise InvalidInputError("agent config must be a mapping of keys to values")
        unknown = {str(k) for k in data} - set(AgentConfigModel.model_fields)
        if unknown:
            raise InvalidInputError(f"unknown agent config keys: {', '.join(_shown(k) for k in sorted(unknown))}")
        _check_tree(data, "agent config", depth=0, secrets_refused=False)
        for name in ("memory_config", "decoding"):
            if isinstance(data.get(name), dict):
                _check_tree(data[name], name, depth=0, secrets_refused=True)
        try:
            model = AgentConfigModel.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(_shown(p) for p in first["loc"]) or "agent config"
            raise InvalidInputError(f"agent config: {where}: {first['msg']}") from None
        dumped = model.model_dump()
        dumped["decoding"] = model.decoding.model_dump(exclude_none=True)
        config = cls(**dumped)
        if schemas:
            config.check_schemas()
        return config

    @classmethod
    def from_file(cls, path: Path) -> AgentConfig:
        """Load a YAML or JSON agent config, bounded before parsing, with a one-line error for anything wrong."""
        return cls.from_dict(load_config_file(path, "agent config"))

    def validate(self) -> None:
        """Check this value as if it had been read from a file (code builds configs too)."""
        AgentConfig.from_dict(asdict(self))

    def check_schemas(self) -> None:
        """Tool parameters and the response schema must be JSON Schema."""
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for

        def check(schema: Any, where: str) -> None:
            if not isinstance(schema, dict):
                raise InvalidInputError(f"{where} must be a JSON Schema object")
            try:
                validator_for(schema).check_schema(schema)
            except SchemaError as exc:
                raise InvalidInputError(f"{where} is not a valid JSON Schema: {exc.message}") from exc

        for i, tool in enumerate(self.tools):
            fn = tool.get("function", tool) if isinstance(tool, dict) else None
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn.get("name"):
                raise InvalidInputError(
                    f"tool #{i + 1} needs a name (OpenAI format: {{type: function, function: {{name, parameters}}}})"
                )
            check(fn.get("parameters", {"type": "object"}), f"parameters of tool {fn['name']!r}")
        if self.response_schema is not None:
            check(self.response_schema, "response_schema")

    @classmethod
    def from_stored(cls, data: Any) -> tuple[AgentConfig, str | None]:
        """A stored config, re-validated: (config, None), or (an empty config, why it is invalid) for a row
        written before validation existed or edited in the database. Reading never crashes on it.
        (JSON Schemas were checked when the row was written; re-checking them on every read costs too much.)"""
        try:
            return cls.from_dict(data if data is not None else {}, schemas=False), None
        except InvalidInputError as exc:
            return cls(), str(exc)


def check_decoding(value: Any, where: str = "decoding") -> dict[str, Any]:
    """Decoding parameters on their own (a registry version's defaults): known, typed, finite, no credentials."""
    if not isinstance(value, dict):
        raise InvalidInputError(f"{where} must be a mapping")
    _check_tree(value, where, depth=0, secrets_refused=True)
    try:
        return DecodingParams.model_validate(value).model_dump(exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidInputError(f"{where}.{'.'.join(_shown(p) for p in first['loc'])}: {first['msg']}") from None


def check_no_credentials(value: Any, where: str) -> None:
    """Refuse credential-looking keys (a reference such as `api_key_env` names a variable and is fine)."""
    _check_tree(value, where, depth=0, secrets_refused=True)


def load_config_file(path: Path, what: str) -> Any:
    """Read a YAML or JSON document of at most `MAX_CONFIG_BYTES`, nested at most `MAX_DEPTH`, with no
    YAML anchors or aliases, and parse it. Every failure is one `InvalidInputError` line."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise InvalidInputError(f"{what} {path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError(f"{what} {path} is not UTF-8 text") from None
    if path.suffix == ".json":
        return _parse_json(text, f"{what} {path}")
    return _parse_yaml(text, f"{what} {path}")


def _parse_json(text: str, where: str) -> Any:
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        raise InvalidInputError(f"{where} is nested {depth} levels deep; the limit is {MAX_DEPTH}")

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(text, parse_constant=refuse_constant)
    except ValueError as exc:
        raise InvalidInputError(f"{where} is not valid JSON: {str(exc).splitlines()[0]}") from None


def _json_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text, without parsing it (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _parse_yaml(text: str, where: str) -> Any:
    """Walk the parser's events first (iterative: no recursion, nothing composed) to refuse anchors,
    aliases and deep nesting; only a document that passes is composed."""
    import yaml

    try:
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise InvalidInputError(f"{where}: YAML anchors and aliases are not accepted (line {line})")
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise InvalidInputError(f"{where} is nested deeper than {MAX_DEPTH} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"{where} is not valid YAML: {first}") from None


def _shown(part: Any) -> str:
    """A key as it may appear in a one-line message: plain names as they are, anything else quoted."""
    text = str(part)
    return text if _PLAIN.fullmatch(text) else repr(text)


_PLAIN = re.compile(r"[\w.-]{1,64}", re.ASCII)


def _check_tree(value: Any, where: str, *, depth: int, secrets_refused: bool) -> None:
    """Nesting bounded, numbers finite, keys strings; with `secrets_refused`, no credential-looking key."""
    limit = MAX_MEMORY_DEPTH if secrets_refused else MAX_DEPTH
    if depth > limit:
        raise InvalidInputError(f"{where} is nested deeper than {limit} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{where}: {value} is not a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInputError(f"{where}: key {key!r} is not a string")
            if secrets_refused and secret_looking(key):
                raise InvalidInputError(
                    f"{where}.{_shown(key)}: credentials are not accepted in a manifest; the runtime reads them from "
                    "the environment or a secret store"
                )
            _check_tree(item, f"{where}.{_shown(key)}", depth=depth + 1, secrets_refused=secrets_refused)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_tree(item, f"{where}[{i}]", depth=depth + 1, secrets_refused=secrets_refused)
