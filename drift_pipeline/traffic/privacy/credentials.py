"""Credentials in free text: API keys, tokens, JWTs, private keys, passwords.

The vendor formats come from `detect-secrets` (Yelp): its regex plugins are run directly on the text
(not through `scan_line`, which reports every word in ad-hoc mode and offers no positions), JWTs pass
its `is_formally_valid` check, and its heuristic filters drop templated and sequential values. Added
here, each for a format the plugins miss:

- `sk-...` keys without the legacy `T3BlbkFJ` marker (OpenAI project, service-account and admin keys;
  Anthropic `sk-ant-...`), GitHub fine-grained `github_pat_...`, Google `AIza...`, Hugging Face `hf_...`;
- `Bearer <token>` and a credential keyword (detect-secrets' keyword list plus `token`, `passphrase`,
  `access_key`, `secret_key`, `credentials`) followed by `:`, `=` or `is` and a value with a letter and
  a digit (or a rarer symbol), without brackets (code: `password = read_password()`);
- the whole PEM block of a private key, not just its header line;
- long random tokens: at least 32 characters with upper case, lower case and digits whose Shannon
  entropy exceeds detect-secrets' base64 limit (4.5 bits). detect-secrets' own high-entropy plugins
  are not used: without quotes they report every word of prose and leave the limit to the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING

from drift_pipeline.traffic.privacy.finding import Finding

if TYPE_CHECKING:  # imported lazily at run time: detect-secrets pulls in requests (~0.3 s)
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

_OWN_PATTERNS = [
    re.compile(r"(?<![\w-])sk-[A-Za-z0-9_-]{20,}"),
    re.compile(r"(?<!\w)github_pat_[A-Za-z0-9_]{22,}"),
    re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}"),
    re.compile(r"(?<![\w-])hf_[A-Za-z0-9]{30,}"),
]
_BEARER = re.compile(r"(?i:\bbearer)\s+([A-Za-z0-9._~+/-]{16,}=*)")
_EXTRA_KEYWORDS = ("token", "passphrase", "access_?key", "secret_?key", "credentials?")
_PEM_BLOCK = re.compile(
    # To its END line, or where the text (or the JSON string holding it) ends: a cut-off key is still a key.
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----[^\"]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|(?=\")|\Z)",
)
_RANDOM_TOKEN = re.compile(r"(?<![\w+/=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![\w+/=-])")
_ENTROPY_LIMIT = 4.5  # detect-secrets' default for Base64HighEntropyString
_TOKEN_RUN = re.compile(r"[A-Za-z0-9_\-+/=.]{16,}")
_KEYWORD_HINTS = ("key", "pass", "pwd", "secret", "contrase", "token", "credential")
_CODE_CHARS = frozenset("()[]{}<>")  # `password = get_password()`, `token: list[str]` are code, not values
_TRIM = " \t\r\n\"'=:/@,;"


@cache
def _plugins() -> tuple:
    """The detect-secrets regex plugins whose formats are distinctive enough for prose."""
    from detect_secrets.plugins import (
        aws,
        azure_storage_key,
        basic_auth,
        discord,
        github_token,
        gitlab_token,
        jwt,
        mailchimp,
        npm,
        openai,
        private_key,
        pypi_token,
        sendgrid,
        slack,
        square_oauth,
        stripe,
        telegram_token,
        twilio,
    )

    return (
        aws.AWSKeyDetector(),
        azure_storage_key.AzureStorageKeyDetector(),
        basic_auth.BasicAuthDetector(),
        discord.DiscordBotTokenDetector(),
        github_token.GitHubTokenDetector(),
        gitlab_token.GitLabTokenDetector(),
        jwt.JwtTokenDetector(),
        mailchimp.MailchimpDetector(),
        npm.NpmDetector(),
        openai.OpenAIDetector(),
        private_key.PrivateKeyDetector(),
        pypi_token.PypiTokenDetector(),
        sendgrid.SendGridDetector(),
        slack.SlackDetector(),
        square_oauth.SquareOAuthDetector(),
        stripe.StripeDetector(),
        telegram_token.TelegramBotTokenDetector(),
        twilio.TwilioKeyDetector(),
    )


@cache
def _keyword_assignment() -> re.Pattern[str]:
    from detect_secrets.plugins.keyword import DENYLIST

    words = "|".join((*DENYLIST, *_EXTRA_KEYWORDS))
    # `OPENAI_API_KEY=...`, `password: ...`, `my api key is ...`; the value stops at space, quote, comma.
    return re.compile(
        rf"(?i:(?:{words})\w{{0,30}})[\"']?\s*(?:[:=]|\bis\b)\s*[\"']?([^\s\"',;]{{6,}})",
    )


def find_credentials(text: str) -> Iterator[Finding]:
    """Every credential in `text`; findings may overlap (the scrubber resolves overlaps)."""
    lower = text.lower()
    if any(word in lower for word in _KEYWORD_HINTS):
        for m in _keyword_assignment().finditer(text):
            if _is_plausible_value(m.group(1)):
                yield Finding("SECRET", m.start(1), m.end(1), m.group(1))
    # Every format below is a run of 16+ token characters, a URL with credentials or a PEM header: most
    # prose has none, and the ~30 regexes are skipped.
    if not (_TOKEN_RUN.search(text) or "://" in text or "PRIVATE KEY" in text or "PuTTY" in text):
        return
    yield from _plugin_findings(text)
    for rx in _OWN_PATTERNS:
        for m in rx.finditer(text):
            if _looks_random(m.group()):
                yield Finding("SECRET", m.start(), m.end(), m.group())
    for m in _BEARER.finditer(text):
        yield Finding("SECRET", m.start(1), m.end(1), m.group(1))
    for m in _RANDOM_TOKEN.finditer(text):
        if not _in_url_or_data(text, m.start()) and _is_high_entropy(m.group()):
            yield Finding("SECRET", m.start(), m.end(), m.group())


def _plugin_findings(text: str) -> Iterable[Finding]:
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector

    for plugin in _plugins():
        if isinstance(plugin, PrivateKeyDetector):
            if any(rx.search(text) for rx in plugin.denylist):
                yield from (Finding("SECRET", m.start(), m.end(), m.group()) for m in _PEM_BLOCK.finditer(text))
            continue
        for rx in plugin.denylist:
            for m in rx.finditer(text):
                start, end = _secret_span(m)
                value = text[start:end]
                if len(value) < 8 or (isinstance(plugin, JwtTokenDetector) and not plugin.is_formally_valid(value)):
                    continue
                yield Finding("SECRET", start, end, value)


def _secret_span(m: re.Match[str]) -> tuple[int, int]:
    """The secret inside a plugin match: its longest captured group when that is the value (basic-auth
    password, quoted AWS secret), else the whole match (GitHub's group is only the `ghp` prefix),
    without the delimiters some plugins include."""
    groups = [i for i in range(1, (m.re.groups or 0) + 1) if m.group(i)]
    best = max(groups, key=lambda i: len(m.group(i)), default=0)
    start, end = (m.start(best), m.end(best)) if best and len(m.group(best)) >= 8 else (m.start(), m.end())
    value = m.string[start:end]
    start += len(value) - len(value.lstrip(_TRIM))
    end -= len(value) - len(value.rstrip(_TRIM))
    return start, max(start, end)


def _looks_random(value: str) -> bool:
    """A generated key mixes letters and digits; `sk-learn-style-api` does not."""
    return any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value)


def _is_plausible_value(value: str) -> bool:
    """A password-like value: letters with a digit (or a rarer symbol), not a template, sequence or URL.

    `your-api-key-here` and `must-be-set` have no digit and only the separators of prose, so they stay."""
    from detect_secrets.filters.heuristic import is_potential_uuid, is_sequential_string, is_templated_secret

    has_letter = any(c.isalpha() for c in value)
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() and c not in "-_." for c in value)
    return (
        has_letter
        and (has_digit or (has_symbol and len(value) >= 8))
        and not _CODE_CHARS.intersection(value)
        and not is_templated_secret(value)
        and not is_sequential_string(value)
        and not is_potential_uuid(value)
        and not value.startswith(("http://", "https://", "$", "%", "<"))
    )


def _in_url_or_data(text: str, start: int) -> bool:
    """A URL path (`github.com/org/repo/blob/<sha>/...`) or inline data (`data:image/png;base64,...`) is
    long and random-looking without being a credential; known token formats in URLs are still found."""
    word_start = max(text.rfind(" ", 0, start), text.rfind("\n", 0, start), text.rfind("\t", 0, start)) + 1
    prefix = text[word_start:start]
    return "://" in prefix or prefix.endswith("base64,")


def _is_high_entropy(value: str) -> bool:
    from detect_secrets.filters.heuristic import is_sequential_string

    return (
        _looks_random(value)
        and not is_sequential_string(value)
        and _entropy_meter().calculate_shannon_entropy(value) > _ENTROPY_LIMIT
    )


@cache
def _entropy_meter() -> Base64HighEntropyString:
    from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString

    return Base64HighEntropyString(limit=_ENTROPY_LIMIT)
