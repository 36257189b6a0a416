"""Standard Webhooks signatures: ``whsec_`` secrets and the three ``webhook-*`` headers.

A signature is ``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
keyed with the secret's decoded bytes.  During a rotation both the old and the
new secret sign, their signatures separated by a space, so that a receiver
holding either one accepts the message.  The timestamp is the time of the
attempt (a retry is signed afresh); the id is the message's and never changes.

Nothing here reads a clock or draws random bytes: the caller passes the time
and the secret's random bytes in (``secrets.token_bytes(32)`` in the app).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"
MIN_SECRET_BYTES = 24
"""The Standard Webhooks minimum; ``new_secret`` is given 32 bytes in practice."""


class InvalidSecret(ValueError):
    """A string that is not ``whsec_`` and the base64 of at least 24 bytes."""


def secret_from_bytes(raw: bytes) -> str:
    """The ``whsec_`` secret for ``raw`` random bytes (at least 24 of them)."""
    if len(raw) < MIN_SECRET_BYTES:
        raise InvalidSecret(
            f"a webhook secret needs at least {MIN_SECRET_BYTES} random bytes, got {len(raw)}"
        )
    return SECRET_PREFIX + base64.b64encode(raw).decode("ascii")


def secret_key(secret: str) -> bytes:
    """The HMAC key a ``whsec_`` secret stands for."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(f"a webhook secret starts with {SECRET_PREFIX!r}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret("a webhook secret is whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise InvalidSecret(f"a webhook secret decodes to at least {MIN_SECRET_BYTES} bytes")
    return key


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` as message ``msg_id`` at ``timestamp``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign(secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers.

    ``secrets`` are the endpoint's current secrets (two during a rotation,
    newest first by convention); ``timestamp`` is the attempt's Unix time in
    whole seconds; ``body`` the exact bytes that will be sent.
    """
    if not msg_id or not msg_id.isprintable() or " " in msg_id:
        # The id travels in a header and is part of the signed string.
        raise ValueError(f"a webhook message id is printable and has no spaces: {msg_id!r}")
    unique = list(dict.fromkeys(secrets))
    if not unique:
        raise InvalidSecret("a message is signed with at least one secret")
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": " ".join(
            signature(secret, msg_id, int(timestamp), body) for secret in unique
        ),
    }
