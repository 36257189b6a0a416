"""Standard Webhooks signatures, checked by the specification's reference library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from workflows.webhooks.signing import InvalidSecret, secret_from_bytes, secret_key, sign

# Fixed "random" bytes: the app draws them with secrets.token_bytes(32).
OLD_SECRET = secret_from_bytes(bytes(range(32)))
NEW_SECRET = secret_from_bytes(bytes(range(100, 132)))
MESSAGE_ID = "msg_2f6c1d8e-5a0b-4c3e-9d7f-1b2a3c4d5e6f"
BODY = json.dumps(
    {"type": "directive.issued", "timestamp": "2008-06-02T01:00:00+00:00",
     "data": {"contract_id": "c-1", "sequence": 1, "summary": "青年地带开到晚上九点"}},
    ensure_ascii=False, separators=(",", ":"),
).encode("utf-8")


def now() -> int:
    # The reference library refuses timestamps more than five minutes from its clock.
    return int(time.time())


def test_a_secret_is_whsec_and_the_base64_of_the_random_bytes() -> None:
    # Given 32 random bytes
    raw = bytes(range(32))

    # When they become a secret
    secret = secret_from_bytes(raw)

    # Then it is whsec_ followed by their base64, and decodes back to them
    assert secret == "whsec_" + base64.b64encode(raw).decode()
    assert secret_key(secret) == raw


def test_fewer_than_24_random_bytes_make_no_secret() -> None:
    with pytest.raises(InvalidSecret):
        secret_from_bytes(bytes(23))
    with pytest.raises(InvalidSecret):
        secret_key("whsec_" + base64.b64encode(bytes(16)).decode())
    with pytest.raises(InvalidSecret):
        secret_key("sk_" + base64.b64encode(bytes(32)).decode())
    with pytest.raises(InvalidSecret):
        secret_key("whsec_not base64!")


def test_the_reference_library_verifies_a_signed_chinese_payload() -> None:
    # Given a message whose body holds Chinese text, signed now
    headers = sign([OLD_SECRET], MESSAGE_ID, now(), BODY)

    # When a receiver verifies it with the Standard Webhooks reference library
    payload = Webhook(OLD_SECRET).verify(BODY, headers)

    # Then it is accepted and reads back as sent
    assert payload["data"]["summary"] == "青年地带开到晚上九点"
    assert headers["webhook-id"] == MESSAGE_ID
    assert headers["webhook-signature"].startswith("v1,")


def test_the_signature_is_the_hmac_of_id_timestamp_and_body() -> None:
    # Given a fixed time
    headers = sign([OLD_SECRET], MESSAGE_ID, 1212368400, BODY)

    # Then the signature is v1, and the base64 HMAC-SHA256 of "{id}.{timestamp}.{body}"
    expected = hmac.new(bytes(range(32)), f"{MESSAGE_ID}.1212368400.".encode() + BODY,
                        hashlib.sha256).digest()
    assert headers == {
        "webhook-id": MESSAGE_ID,
        "webhook-timestamp": "1212368400",
        "webhook-signature": "v1," + base64.b64encode(expected).decode(),
    }


def test_during_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    # Given an endpoint rotating from the old secret to the new one
    headers = sign([NEW_SECRET, OLD_SECRET], MESSAGE_ID, now(), BODY)

    # Then two signatures travel, separated by a space
    assert len(headers["webhook-signature"].split(" ")) == 2

    # And a receiver holding either secret accepts the message
    assert Webhook(NEW_SECRET).verify(BODY, headers)["type"] == "directive.issued"
    assert Webhook(OLD_SECRET).verify(BODY, headers)["type"] == "directive.issued"


def test_a_receiver_with_another_secret_refuses_the_message() -> None:
    headers = sign([OLD_SECRET], MESSAGE_ID, now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW_SECRET).verify(BODY, headers)


def test_a_tampered_body_fails_verification() -> None:
    # Given a signed message
    headers = sign([OLD_SECRET], MESSAGE_ID, now(), BODY)

    # When one character of its body is changed on the way
    tampered = BODY.replace("九点".encode(), "十点".encode())

    # Then the reference library refuses it
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD_SECRET).verify(tampered, headers)


def test_a_retry_is_signed_afresh_with_the_same_id() -> None:
    # Given the first attempt and a retry five seconds later
    first = sign([OLD_SECRET], MESSAGE_ID, now() - 5, BODY)
    retry = sign([OLD_SECRET], MESSAGE_ID, now(), BODY)

    # Then the id is kept, the timestamp and the signature are new, and both verify
    assert retry["webhook-id"] == first["webhook-id"]
    assert retry["webhook-signature"] != first["webhook-signature"]
    Webhook(OLD_SECRET).verify(BODY, first)
    Webhook(OLD_SECRET).verify(BODY, retry)


def test_a_message_needs_a_secret_and_a_plain_id() -> None:
    with pytest.raises(InvalidSecret):
        sign([], MESSAGE_ID, now(), BODY)
    with pytest.raises(ValueError):
        sign([OLD_SECRET], "msg 1", now(), BODY)
    with pytest.raises(ValueError):
        sign([OLD_SECRET], "", now(), BODY)
