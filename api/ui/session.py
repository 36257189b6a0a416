"""Dashboard sessions: a signed cookie naming a session kept in Redis, and CSRF tokens.

Signing in checks the API key with the application's own ``authenticate`` (the
call ``api.deps.get_caller`` makes) and keeps the key in Redis under a random
session id, for ``SESSION_SECONDS``.  The browser holds only that id, signed
with itsdangerous, in an ``HttpOnly``, ``SameSite=Strict`` cookie (``Secure``
when the request came over HTTPS); every request authenticates the key again,
so a revoked key signs the session out at once, and signing out deletes the
session.  The raw key never reaches the browser after the sign-in form.

Each session has its own CSRF token (random, kept with the session); every
form posts it back and a POST without the right one is refused (403) before
anything runs.  The sign-in form, which has no session yet, carries a token
signed with a timestamp instead.

The signing secret is made once per Redis (``SET NX``), so every API process
of one deployment signs alike; emptying Redis signs everyone out.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer

from domain.organisations import Caller
from workflows import directory
from workflows.bootstrap import Services

COOKIE = "needle_session"
LANG_COOKIE = "needle_lang"
SESSION_SECONDS = 8 * 3600
LOGIN_TOKEN_SECONDS = 3600
SECRET_KEY = "tn:ui:secret"
SESSION_PREFIX = "tn:ui:session:"


@dataclass(frozen=True)
class Session:
    id: str
    caller: Caller
    csrf: str


def _secret(client: Any) -> str:
    secret = client.get(SECRET_KEY)
    if secret is None:
        client.set(SECRET_KEY, secrets.token_urlsafe(32), nx=True)
        secret = client.get(SECRET_KEY)
    return secret.decode() if isinstance(secret, bytes) else str(secret)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _client(services: Services) -> Any:
    """The deployment's Redis (typed ``Any``: redis-py types replies as sync-or-async)."""
    if services.redis is None:
        raise RuntimeError("the dashboard keeps its sessions in Redis; none is configured")
    return services.redis


def _serializer(client: Any) -> URLSafeSerializer:
    return URLSafeSerializer(_secret(client), salt="needle-ui-session")


def sign_in(services: Services, raw_key: str) -> tuple[str, Session] | None:
    """A new session for ``raw_key`` (its signed cookie value), or ``None`` for a bad key."""
    if not raw_key.isascii() or not raw_key:
        return None
    caller = directory.authenticate(services.ledger, raw_key)
    if caller is None:
        return None
    client = _client(services)
    session_id = secrets.token_urlsafe(24)
    csrf = secrets.token_urlsafe(24)
    client.hset(SESSION_PREFIX + session_id, mapping={"key": raw_key, "csrf": csrf})
    client.expire(SESSION_PREFIX + session_id, SESSION_SECONDS)
    return _serializer(client).dumps(session_id), Session(session_id, caller, csrf)


def session_of(services: Services, cookie: str | None) -> Session | None:
    """The live session a cookie names, its key authenticated again (``None`` otherwise)."""
    if not cookie or services.redis is None or len(cookie) > 512:
        return None
    client = _client(services)
    try:
        session_id = _serializer(client).loads(cookie)
    except BadSignature:
        return None
    if not isinstance(session_id, str):
        return None
    stored = client.hgetall(SESSION_PREFIX + session_id)
    if not stored:
        return None
    fields = {_text(k): _text(v) for k, v in stored.items()}
    caller = directory.authenticate(services.ledger, fields.get("key", ""))
    if caller is None:
        client.delete(SESSION_PREFIX + session_id)
        return None
    return Session(session_id, caller, fields.get("csrf", ""))


def sign_out(services: Services, session: Session) -> None:
    _client(services).delete(SESSION_PREFIX + session.id)


def csrf_matches(session: Session, token: str | None) -> bool:
    return bool(token) and bool(session.csrf) and secrets.compare_digest(
        session.csrf.encode(), (token or "").encode())


def login_token(services: Services) -> str:
    """The sign-in form's CSRF token: signed, valid for an hour."""
    signer = TimestampSigner(_secret(_client(services)), salt="needle-ui-login")
    return signer.sign(secrets.token_urlsafe(12)).decode()


def login_token_valid(services: Services, token: str | None) -> bool:
    if not token or len(token) > 200:
        return False
    signer = TimestampSigner(_secret(_client(services)), salt="needle-ui-login")
    try:
        signer.unsign(token, max_age=LOGIN_TOKEN_SECONDS)
    except BadSignature:
        return False
    return True
