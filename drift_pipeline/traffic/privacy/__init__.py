"""PII scrubbing: typed placeholders so that a replayed prompt still reads naturally.

Regexes only *find candidates*; kept libraries decide what is real where one exists:

- credentials (`credentials`): `detect-secrets` plugins (AWS, GitHub, GitLab, JWT, OpenAI, Slack, Stripe,
  private keys, ...) plus the formats they miss (`sk-`/`sk-ant-` keys, `github_pat_`, bearer tokens,
  `password: ...`, long random tokens) -> `<SECRET>`;
- contacts (`contacts`): e-mail addresses (quoted local parts, IDN domains checked with `idna`) and
  `phonenumbers.PhoneNumberMatcher` -> `<EMAIL>`, `<PHONE>`;
- identifiers (`identifiers`): `python-stdnum` for cards (Luhn, any of space/dash/dot separators), IBANs
  (any case), US SSN, UK NINO, ES DNI/NIE, IT codice fiscale, FR NIR, IN Aadhaar, BR CPF, CA SIN, NL BSN;
  stdlib `ipaddress` -> `<CARD>`, `<IBAN>`, `<NATIONAL_ID>`, `<IP>`;
- personal (`personal`): NER-free cue heuristics for names, postal addresses and dates of birth, with
  their limits in that module -> `<NAME>`, `<ADDRESS>`, `<DOB>`;
- tenant patterns: the tenant's own regexes -> `<CUSTOM:name>`.
"""

from drift_pipeline.traffic.privacy.contacts import DEFAULT_PHONE_REGIONS
from drift_pipeline.traffic.privacy.finding import PLACEHOLDERS, Finding
from drift_pipeline.traffic.privacy.scrubber import Scrubber, scrub_text

__all__ = ["DEFAULT_PHONE_REGIONS", "PLACEHOLDERS", "Finding", "Scrubber", "scrub_text"]
