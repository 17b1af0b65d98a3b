"""Names, postal addresses and dates of birth: NER-free heuristics with known limits.

No kept library finds these in free text without a language model (presidio and scrubadub need a spaCy
model download), so these are cue-based rules. They find what follows a cue and miss the rest:

- NAME: 1-3 capitalised words after an introduction (`my name is`, `call me`, `meu nome é`, two after `Name:`,
  `me llamo`, `je m'appelle`, `ich heiße`), an honorific (`Mr.`, `Dr.`, `Sra.`, `Herr`), a sign-off at
  the end of a line (`Thanks,`, `Best regards,`), or two capitalised words after `I'm`/`I am`/`this is`
  (not a common word such as `Sorry` or `Feeling`). A name mentioned without a cue ("ask Maria"), an
  all-lower-case name, or a name in a script without case is missed.
- ADDRESS: a house number and capitalised street name before a street type (`742 Evergreen Terrace`,
  `55 Water St., Apt 4B`), a French number + `rue/avenue/...`, a street type first with a house number
  after it (`Rua Augusta, 1500`, `Calle Mayor 5`, `Via Roma 10`), German compounds (`Musterstraße 12`).
  City, postcode and country are kept (they locate many people, not one); a PO box, a rural route or an
  address without a house number is missed.
- DOB: a date (ISO, `dd/mm/yyyy` and `mm/dd/yyyy` with `/ . -`, `12 March 1985`, `March 3, 2001`) right
  after a birth cue (`born`, `date of birth`, `DOB`, `birthday`, `geboren`, `data de nascimento`,
  `fecha de nacimiento`, `né le`). A date without a cue stays (it is usually not a birth date).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from drift_pipeline.traffic.privacy.finding import Finding

_UPPER = "A-Z" + "".join(ch for ch in map(chr, range(0xC0, 0x530)) if ch.isupper())  # Latin, Greek, Cyrillic
_WORD = r"[^\W\d_](?:[\w'’-]*[^\W\d_])?"
_CAP = rf"(?=[{_UPPER}]){_WORD}"  # a word with an upper-case first letter
_NAME_TOKENS = rf"({_CAP}(?:[ \t]+(?:(?:de|da|do|dos|van|von|der|del|la|le|di|bin|al)[ \t]+)?{_CAP}){{0,2}})"
_STRONG_CUES = (
    r"(?:my|his|her|their) name is|my name's|name\s*:|call me|i am called|"
    r"meu nome é|me chamo|me llamo|mi nombre es|je m'appelle|je m’appelle|ich heiße|ich heisse|mein name ist"
)
_HONORIFICS = r"Mr|Mrs|Ms|Miss|Mx|Dr|Prof|Sr|Sra|Srta|Herr|Frau|Mme|Mlle"
_SIGN_OFFS = r"thanks|thank you|regards|best regards|kind regards|warm regards|best|cheers|sincerely|yours truly"
_NAME_RULES = [
    re.compile(rf"(?i:\b(?:{_STRONG_CUES}))[ \t]+{_NAME_TOKENS}"),
    re.compile(rf"\b(?:{_HONORIFICS})\.?[ \t]+{_NAME_TOKENS}"),
    re.compile(rf"(?i:\b(?:{_SIGN_OFFS})),?[ \t]*\n?[ \t]*{_NAME_TOKENS}[ \t]*[.!]?[ \t]*(?=\n|\"|\Z)"),
]
_NAME_FIELD = re.compile(r"(?i:name\s*:)")
_WEAK_CUE = re.compile(
    rf"(?i:\b(?:i'm|i’m|i am|this is))[ \t]+({_CAP}[ \t]+{_CAP})"
    r"(?=[,.!]|[ \t]+(?:from|at|with|calling|speaking|here|and|of)\b|[ \t]*(?:\n|\Z))"
)
# Capitalised words that follow a cue without being a name ("I'm Sorry", "this is Python Code").
_NOT_NAMES = frozenset({
    "sorry", "happy", "glad", "here", "not", "looking", "going", "trying", "interested", "feeling", "just",
    "so", "very", "really", "afraid", "unable", "able", "sure", "the", "a", "an", "it", "this", "that", "your",
    "my", "our", "their", "thank", "thanks", "hello", "hi", "dear", "customer", "team", "support", "sir",
    "madam", "all", "everyone", "good", "great", "fine", "back", "now", "currently", "also", "still", "always",
    "writing", "calling", "contacting", "reaching", "following", "excited", "pleased", "delighted",
    "assistant", "chatgpt", "openai", "google", "python", "java", "monday", "tuesday", "wednesday", "thursday",
    "friday", "saturday", "sunday", "january", "february", "march", "april", "may", "june", "july", "august",
    "september", "october", "november", "december", "maybe", "please", "yes", "no", "ok", "okay", "new",
    "today", "tomorrow",
})  # fmt: skip

_STREET_TYPES = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Ter|"
    r"Square|Sq|Highway|Hwy|Parkway|Pkwy|Close|Crescent|Cres|Circle|Cir|Trail|Row|Walk|Gardens|Grove|Mews"
)
_UNIT = r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor|Fl)\.?[ \t]*#?[\w-]+|,?[ \t]+#\d+\w?)?"
_ADDRESS_RULES = [
    re.compile(
        rf"\b\d{{1,5}}[A-Za-z]?[ \t]+(?:{_CAP}[ \t]+){{1,4}}(?:{_STREET_TYPES})\b\.?"
        rf"(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b)?{_UNIT}"
    ),
    re.compile(
        rf"\b\d{{1,4}}(?:[ \t]?(?:bis|ter))?,?[ \t]+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|route)"
        rf"[ \t]+(?:(?:de|du|des|de la|l'|l’|d'|d’)[ \t]*)?{_CAP}(?:[ \t]+{_CAP}){{0,3}}"
    ),
    re.compile(
        r"\b(?:Rua|Avenida|Av\.|Travessa|Alameda|Praça|Calle|Avda\.|Paseo|Plaza|Camino|Carrer|Via|Viale|Piazza|"
        rf"Corso|Largo|Rue)[ \t]+(?:(?:de|da|do|das|dos|del|de la|della|di|du|des)[ \t]+)?{_CAP}(?:[ \t]+{_CAP}){{0,3}}"
        r",?[ \t]*(?:n[º°o.][ \t]*)?\d{1,5}[A-Za-z]?\b"
    ),
    re.compile(r"\b[A-ZÄÖÜ][\wäöüß-]*(?:straße|strasse|str\.|allee|gasse|platz|weg|damm)[ \t]+\d{1,4}[a-z]?\b"),
]

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?[ \t]+(?:of[ \t]+)?{_MONTH},?[ \t]+\d{{4}}"
    rf"|{_MONTH}[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}})(?!\d)"
)
_BIRTH_CUES = (
    r"born|date of birth|d\.?o\.?b\.?|birth ?date|birthday|geburtsdatum|geboren|data de nascimento|"
    r"nascid[oa]|fecha de nacimiento|nacid[oa]|né|née|date de naissance"
)
_DOB = re.compile(
    rf"(?i:\b(?:{_BIRTH_CUES}))(?:[ \t]*[:\-–][ \t]*|[ \t]+)(?i:(?:is|was|on|in|am|em|el|le)[ \t]+)?({_DATE})",
)


# Lower-case substrings without which a rule cannot match: most texts skip most regexes.
_STRONG_HINTS = ("name", "nome", "nombre", "call me", "called", "chamo", "llamo", "appelle", "heiße", "heisse")
_SIGN_OFF_HINTS = ("thank", "regards", "best", "cheers", "sincerely", "yours")
_WEAK_HINTS = ("i'm", "i’m", "i am", "this is")
_GERMAN_HINTS = ("stra", "str.", "allee", "gasse", "platz", "weg", "damm")
_BIRTH_HINTS = ("born", "birth", "dob", "d.o.b", "geb", "nasc", "naci", "né", "naissance")


def find_names(text: str) -> Iterator[Finding]:
    lower = text.lower()
    strong, honorific, sign_off = _NAME_RULES
    rules = [honorific]
    rules += [strong] if any(h in lower for h in _STRONG_HINTS) else []
    rules += [sign_off] if any(h in lower for h in _SIGN_OFF_HINTS) else []
    for rule in rules:
        for m in rule.finditer(text):
            words = m.group(1).split()
            # `name: String` is a type annotation; a form's `Name:` field holds a first and last name.
            if words[0].lower() not in _NOT_NAMES and (len(words) > 1 or not _NAME_FIELD.match(m.group(0))):
                yield Finding("NAME", m.start(1), m.end(1), m.group(1))
    if not any(h in lower for h in _WEAK_HINTS):
        return
    for m in _WEAK_CUE.finditer(text):
        words = m.group(1).split()
        if not any(w.lower() in _NOT_NAMES or w.lower().endswith("ing") for w in words):
            yield Finding("NAME", m.start(1), m.end(1), m.group(1))


def find_addresses(text: str) -> Iterator[Finding]:
    if not any(c.isdigit() for c in text):
        return  # every rule needs a house number
    rules = _ADDRESS_RULES if any(h in text.lower() for h in _GERMAN_HINTS) else _ADDRESS_RULES[:-1]
    for rule in rules:
        yield from (Finding("ADDRESS", m.start(), m.end(), m.group()) for m in rule.finditer(text))


def find_dates_of_birth(text: str) -> Iterator[Finding]:
    lower = text.lower()
    if any(h in lower for h in _BIRTH_HINTS):
        yield from (Finding("DOB", m.start(1), m.end(1), m.group(1)) for m in _DOB.finditer(text))
