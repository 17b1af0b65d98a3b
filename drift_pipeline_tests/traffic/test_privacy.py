"""PII scrubbing on a list of formats, including look-alikes that must survive."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drift_pipeline.errors import InvalidInputError
from drift_pipeline.traffic.privacy import Scrubber, scrub_text

SCRUBBED = [
    ("write to john.doe+tag@example.co.uk today", "write to <EMAIL> today"),
    ("contact: a_b@sub.example.org.", "contact: <EMAIL>."),
    ("call +1 (415) 555-2671 now", "call <PHONE> now"),
    ("ring 020 7946 0958 or +44 20 7946 0958", "ring <PHONE> or <PHONE>"),
    ("Tel: +49 30 901820", "Tel: <PHONE>"),
    ("my number is (202) 555-0143", "my number is <PHONE>"),
    ("card 4111 1111 1111 1111 exp 12/29", "card <CARD> exp 12/29"),
    ("mastercard 5500-0000-0000-0004", "mastercard <CARD>"),
    ("amex 378282246310005", "amex <CARD>"),
    ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "IBAN <IBAN> thanks"),
    ("pay DE89370400440532013000 now", "pay <IBAN> now"),
    ("FR1420041010050500013M02606 is mine", "<IBAN> is mine"),
    ("ssn 123-45-6789", "ssn <NATIONAL_ID>"),
    ("NI number AB 12 34 56 C", "NI number <NATIONAL_ID>"),
    ("DNI 12345678Z", "DNI <NATIONAL_ID>"),
    ("codice fiscale RSSMRA85T10A562S", "codice fiscale <NATIONAL_ID>"),
    ("aadhaar 2345 6789 0124", "aadhaar <NATIONAL_ID>"),
    ("from 192.168.0.1 via 10.0.0.254", "from <IP> via <IP>"),
    ("v6 2001:db8::8a2e:370:7334 and ::1 and fe80::1", "v6 <IP> and <IP> and <IP>"),
]

KEPT = [
    "not a card 4111 1111 1111 1112",  # 16 digits, Luhn fails
    "bad iban GB82 WEST 1234 5698 7654 33",  # checksum fails
    "bad ssn 000-12-3456",  # area 000 is never issued
    "order 42 items, 2023 was great, ticket 1234567",
    "Is 17077 a prime number? Think step by step.",
    "version 1.2.3.4.5 and 999.1.1.1",
    "meet at 12:30:45 today",
    "std::string and a::b",
    "0000 0000 0000 0000",
    # code is not a credential: brackets mean a call, a type or an index
    "password = get_password(user)",
    "def f(token: list[str]) -> None: ...",
    "sorted(items, key=lambda kv: kv[1]); evens = p[1::2]",
    # long random-looking strings that are not credentials: a commit URL, inline image data
    "see https://github.com/python/cpython/blob/1857a40807daeae3a1bf5efb682de9c9ae6df845/Lib/ast.py",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
    # arithmetic, postcodes and book numbers are not phone numbers
    "17383 ÷ 103 = 168.9320 and 18705 ÷ 89 = 210.1685393258427",
    "Boston, MA 02110-1301, USA",
    "ISBN 1-85798-218-5",
    # nine digits are an SSN only after a keyword naming one
    "order 536221234 shipped",
]


@pytest.mark.parametrize(("text", "expected"), SCRUBBED)
def test_pii_is_replaced_by_typed_placeholders(text: str, expected: str):
    assert scrub_text(text) == expected


@pytest.mark.parametrize("text", KEPT)
def test_look_alikes_are_not_scrubbed(text: str):
    assert scrub_text(text) == text


def test_tenant_patterns_become_custom_placeholders():
    scrubber = Scrubber({"order": r"ORD-\d{6}", "badge": r"\bEMP\d{4}\b"})
    assert scrubber.scrub("ORD-123456 for EMP0042 (a@b.io)") == "<CUSTOM:order> for <CUSTOM:badge> (<EMAIL>)"


def test_bad_tenant_pattern_is_a_clear_error():
    with pytest.raises(InvalidInputError, match="not a valid regex"):
        Scrubber({"broken": "(unclosed"})


def test_record_fields_are_scrubbed_everywhere_and_stay_json():
    messages = json.dumps(
        [
            {"role": "system", "content": "Agent for jane@corp.com"},
            {"role": "user", "content": [{"type": "text", "text": "card 4111111111111111"}]},
            {"role": "assistant", "content": "Call +1 415 555 2671"},
        ]
    )
    tool_calls = json.dumps(
        [{"id": "c1", "function": {"name": "refund", "arguments": '{"iban": "DE89370400440532013000"}'}}]
    )
    row = {"messages": messages, "response_text": "Sent to 10.1.2.3", "tool_calls": tool_calls, "error": "", "x": 1}
    out = Scrubber().scrub_row(row)
    msgs = json.loads(out["messages"])
    assert msgs[0]["content"] == "Agent for <EMAIL>"
    assert msgs[1]["content"][0]["text"] == "card <CARD>"
    assert msgs[2]["content"] == "Call <PHONE>"
    assert out["response_text"] == "Sent to <IP>"
    args = json.loads(json.loads(out["tool_calls"])[0]["function"]["arguments"])
    assert args == {"iban": "<IBAN>"}
    assert out["x"] == 1

    frame = Scrubber().scrub_frame(pd.DataFrame([row]))
    assert frame.loc[0, "messages"] == out["messages"]
    assert frame.loc[0, "response_text"] == "Sent to <IP>"


def test_bare_ssn_needs_its_keyword():
    assert scrub_text("SSN 536221234") == "SSN <NATIONAL_ID>"
    assert scrub_text("tracking 536221234") == "tracking 536221234"


def test_a_private_key_block_becomes_one_placeholder():
    text = "key:\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----\nthanks"
    assert scrub_text(text) == "key:\n<SECRET>\nthanks"


def test_an_unlabelled_random_token_is_a_secret():
    token = "Zk3Qw9Lm2Xp7Vb4Nc8Rt1Yh6Js0Df5GaE2uW7iO9pQ"
    assert scrub_text(f"use {token} for the staging cluster") == "use <SECRET> for the staging cluster"


def test_json_values_under_pii_keys_are_replaced_whole():
    args = {"full_name": "ann lee", "dob": "1990", "password": "pw", "name": "refund", "amount": 12}
    tool_calls = json.dumps([{"function": {"name": "refund", "arguments": json.dumps(args)}}])
    out = json.loads(json.loads(Scrubber().scrub_json(tool_calls))[0]["function"]["arguments"])
    assert out == {"full_name": "<NAME>", "dob": "<DOB>", "password": "<SECRET>", "name": "refund", "amount": 12}


# Text built from the pieces PII detectors key on, so that random draws hit the detectors' edges.
_PIECES = st.sampled_from(
    [
        " ", "\n", "\\n", '"', "\\", "@", ".", "-", "+", ":", "/", "=", "#", "(", ")", ",", "é", "\u00df",
        "my name is ", "I'm ", "Mr. ", "Thanks,", "born on ", "DOB: ", "SSN ", "password: ", "Bearer ",
        "Ann", "Lee", "Main", "Street", "Rua", "12", "1985", "4111", "1111", "536221234", "+55", "11",
        "98765-4321", "de89370400440532013000", "a.b", "example.com", "sk-", "AKIA", "eyJ", "x" * 20,
    ]
)  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=40).map("".join))
def test_scrubbing_any_text_is_total_idempotent_and_keeps_json_valid(text: str):
    scrubbed = scrub_text(text)
    assert isinstance(scrubbed, str)
    assert scrub_text(scrubbed) == scrubbed
    line = json.dumps({"content": text})
    assert isinstance(json.loads(scrub_text(line)), dict)
