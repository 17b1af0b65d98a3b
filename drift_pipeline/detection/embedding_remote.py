"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` server, through `litellm.embedding`.

text-embeddings-inference, vLLM, Ollama's OpenAI API and a LiteLLM proxy all speak it. `RemoteEncoder`
has SentenceTransformer's `encode` signature, so the `Embedder` uses it like the in-process model.

The server is not trusted: every answer is checked before a vector is kept (one vector per text, each
index once, one dimension across all answers and equal to the configured one, finite numbers, non-zero
norm), bodies above `max_response_bytes` are cut off while streaming, and anything wrong is one
`EmbeddingServiceError` line. Transient failures (429 with Retry-After, 5xx, timeouts, connection errors)
are retried with the project's `RetryPolicy`; the OpenAI client's own retries are off so they do not
multiply ours. Vectors are always returned unit-normalised. The API key is a `SecretStr` until the
moment the HTTP client is built, and never appears in `repr`, logs or errors.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from drift_pipeline.detection.replay_call import is_retryable
from drift_pipeline.errors import DriftPipelineError
from drift_pipeline.retry import RetryPolicy

if TYPE_CHECKING:
    import httpx
    from pydantic import SecretStr

BACKEND = "openai-compatible"
DEFAULT_RETRY = RetryPolicy(attempts=5, base_delay_s=0.5, max_delay_s=30.0)
MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # ~ 32 texts x 4096 dims as JSON text, with a wide margin


class EmbeddingServiceError(DriftPipelineError):
    """The embedding server failed or answered something that is not a valid set of vectors."""


class _BadAnswer(Exception):
    """Raised inside the HTTP transport (too large, not JSON); found again in the chain litellm wraps it in."""

    MARK = "bad embedding answer: "

    def __init__(self, what: str) -> None:
        super().__init__(self.MARK + what)


class RemoteEncoder:
    """A SentenceTransformer-like encoder backed by an OpenAI-compatible embedding endpoint."""

    def __init__(
        self,
        model: str,
        url: str,
        *,
        api_key: SecretStr | None = None,
        dimension: int | None = None,
        timeout_s: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if not model or not url:
            raise EmbeddingServiceError(
                "the openai-compatible embedding backend needs DRIFT_PIPELINE_EMBEDDING_MODEL and _EMBEDDING_URL"
            )
        self.model = model
        self._base_url = url.rstrip("/")
        self.url = _without_userinfo(self._base_url)  # what messages show: no `user:password@`
        self.dimension = dimension  # None: the first valid answer fixes it for this encoder
        self.timeout_s = timeout_s
        self.retry = retry
        self.max_response_bytes = max_response_bytes
        self._api_key = api_key
        self.requests = 0  # HTTP answers accepted, for tests and benchmarks

    def __repr__(self) -> str:
        return f"RemoteEncoder(model={self.model!r}, url={self.url!r})"

    def encode(
        self,
        sentences: Sequence[str],
        batch_size: int = 32,
        normalize_embeddings: bool = True,
        convert_to_numpy: bool = True,
        **_ignored: Any,
    ) -> np.ndarray:
        """One unit-norm float32 row per text, in order (always normalised: cosine needs it)."""
        # OpenAI-style servers refuse an empty input string; a space embeds the same absence of content.
        texts = [t if t.strip() else " " for t in sentences]
        rows = [self._request(texts[i : i + batch_size]) for i in range(0, len(texts), max(1, batch_size))]
        if not rows:
            return np.zeros((0, self.dimension or 0), dtype=np.float32)
        return np.concatenate(rows).astype(np.float32)

    def _request(self, batch: list[str]) -> np.ndarray:
        import litellm

        litellm.suppress_debug_info = True  # its "Give Feedback" banner would bury our one-line error

        retrying = self.retry.retrying(lambda exc: is_retryable(exc) and _bad_answer(exc) is None)
        try:
            for attempt in retrying:
                with attempt:
                    response = litellm.embedding(
                        model=f"openai/{self.model}",
                        input=batch,
                        api_base=self._base_url,
                        api_key=self._key(),
                        encoding_format="float",
                        timeout=self.timeout_s,
                        client=self._client,
                    )
        except Exception as exc:
            raise EmbeddingServiceError(self._describe(exc)) from None
        matrix = self._check(response, len(batch))
        self.requests += 1
        return matrix

    def _check(self, response: Any, expected: int) -> np.ndarray:
        """The answer's vectors in input order, unit-normalised; anything off is an EmbeddingServiceError."""
        data = list(_field(response, "data") or [])
        if len(data) != expected:
            raise self._bad(f"returned {len(data)} vectors for {expected} texts")
        indices = [_field(item, "index") for item in data]
        if any(i is not None for i in indices):  # without indices the answer's order is the input's
            if not all(_is_int(i) for i in indices) or sorted(indices) != list(range(expected)):
                raise self._bad("returned indices that are not one per text")
            data = [item for _, item in sorted(zip(indices, data, strict=True), key=lambda pair: pair[0])]
        vectors = [_field(item, "embedding") for item in data]
        if not all(isinstance(v, list) and v and all(_is_number(x) for x in v) for v in vectors):
            raise self._bad("returned an embedding that is not a list of numbers")
        lengths = {len(v) for v in vectors}
        if len(lengths) != 1:
            raise self._bad(f"returned vectors of different lengths {sorted(lengths)}")
        matrix = np.asarray(vectors, dtype=np.float64)
        if self.dimension is not None and matrix.shape[1] != self.dimension:
            raise self._bad(f"returned {matrix.shape[1]}-dimensional vectors, expected {self.dimension}")
        if not np.isfinite(matrix).all():
            raise self._bad("returned NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1)
        if not (norms > 0).all():
            raise self._bad("returned a zero vector")
        self.dimension = matrix.shape[1]
        return (matrix / norms[:, None]).astype(np.float32)

    def _bad(self, what: str) -> EmbeddingServiceError:
        return EmbeddingServiceError(f"embedding server {self.url} (model {self.model}) {what}")

    def _describe(self, exc: BaseException) -> str:
        if (what := _bad_answer(exc)) is not None:
            return f"embedding server {self.url} {what}"
        status = getattr(exc, "status_code", None)
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        key = self._key()
        if key and key != "none":
            text = text.replace(key, "***")  # a server may echo the bearer token in its error page
        text = text.replace(self._base_url, self.url)
        detail = f"HTTP {status}: " if isinstance(status, int) else ""
        return f"embedding server {self.url} failed: {detail}{type(exc).__name__}: {text}".rstrip(": ")

    def _key(self) -> str:
        # The OpenAI client refuses an empty key; local servers (TEI, vLLM) accept any.
        return self._api_key.get_secret_value() if self._api_key is not None else "none"

    @functools.cached_property
    def _client(self) -> Any:
        import httpx
        import openai

        return openai.OpenAI(
            api_key=self._key(),
            base_url=self._base_url,
            max_retries=0,
            timeout=self.timeout_s,
            http_client=httpx.Client(transport=_capped_transport(self.max_response_bytes), timeout=self.timeout_s),
        )


def _capped_transport(limit: int) -> httpx.BaseTransport:
    """An HTTP transport that reads at most `limit` bytes of an answer and refuses a 2xx that is not JSON."""
    import httpx

    class Transport(httpx.HTTPTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            response = super().handle_request(request)
            try:
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _BadAnswer(f"sent more than {limit} bytes in one answer")
                body = bytearray()
                for chunk in response.iter_bytes():  # decoded: a gzip bomb hits the limit too
                    body += chunk
                    if len(body) > limit:
                        raise _BadAnswer(f"sent more than {limit} bytes in one answer")
            finally:
                response.close()
            if response.is_success:
                try:
                    json.loads(body)
                except ValueError:
                    kind = response.headers.get("content-type", "no content type").split(";")[0][:60]
                    what = f"answered HTTP {response.status_code} with a body that is not JSON ({kind})"
                    raise _BadAnswer(what) from None
            # The body is decoded now: drop the headers that describe the wire form.
            wire = {"content-encoding", "content-length", "transfer-encoding"}
            headers = [(k, v) for k, v in response.headers.items() if k.lower() not in wire]
            return httpx.Response(response.status_code, headers=headers, content=bytes(body), request=request)

    return Transport()


def _without_userinfo(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}{sep}{host.rsplit('@', 1)[-1]}{slash}{path}" if sep else url


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bad_answer(exc: BaseException | None) -> str | None:
    """What `_BadAnswer` said, if one caused `exc` (litellm re-raises transport errors as its own types)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        text = str(exc)
        if _BadAnswer.MARK in text:
            return text.split(_BadAnswer.MARK, 1)[1].splitlines()[0][:200]
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None
