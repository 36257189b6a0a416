"""Webhook signing secrets, encrypted at rest (issue 11): no event holds one in clear.

A subscription's events are immutable and hash-chained, so a secret written
into one stays there for good.  Each secret is therefore sealed before it is
recorded, under a data key of its own (envelope encryption, AES-256-GCM from
``cryptography``):

- the event holds ``{"key": <key id>, "nonce": …, "sealed": …}``: the secret
  encrypted with its data key, the key id as associated data;
- the data key lives in ``webhook_secret_keys(key_id, subscription_id,
  wrapped, destroy_after)`` in the event store's database (beside the outbox),
  wrapped (encrypted) under the master key from settings
  (``NEEDLE_WEBHOOK_SECRET_KEY``; in development a key generated once in
  ``<var_dir>/webhook-secrets.key``), the key id again as associated data;
- a rotation gives the previous secret's data key a ``destroy_after`` at the
  end of the 24 h overlap; a second rotation within it, or deleting the
  subscription, destroys the older keys at once.  From ``destroy_after`` on the
  key is refused, and the next sweep deletes its row: the sealed secret in the
  event can then never be opened again, by anyone holding the master key or a
  copy of the events (crypto-shredding).  Backups of the database taken before
  the deletion still hold the key until they expire.

A data key row is written *before* the event that uses it (its own
transaction): a crash in between leaves an unused row, never an event whose
secret cannot be opened.  Destroying happens *after* the event that retires a
secret is saved.

Events recorded before this module hold the secret as a plain string; they
are read as they are (``domain.subscriptions.sealed``): nothing can remove a
clear secret from an immutable event, so rotating such a subscription's
secret retires it (after the overlap it no longer signs).

Unwrapped data keys are kept in memory for ``CACHE_SECONDS`` (a delivery opens
the secrets of every message it signs); ``destroy_after`` is checked on every
open all the same.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.subscriptions import CLEAR, Sealed
from workflows.webhooks.outbox.tables import OutboxTables

if TYPE_CHECKING:
    from workflows.ledger import Ledger
    from workflows.settings import Settings

KEY_FILE = "webhook-secrets.key"
CACHE_SECONDS = 30.0
SWEEP_SECONDS = 60.0
NONCE_BYTES = 12


class SecretUnreadable(Exception):
    """The secret's data key was destroyed (rotated out, or its subscription deleted)."""


def master_key(settings: Settings) -> bytes:
    """The key that wraps data keys: ``NEEDLE_WEBHOOK_SECRET_KEY`` (32+ characters), else the
    development key file, made once; stretched to 256 bits with HKDF."""
    from workflows.settings import development_key  # settings reads webhooks' modules

    if settings.webhook_secret_key is not None:
        text = settings.webhook_secret_key.get_secret_value()
    else:
        text = development_key(Path(settings.var_dir) / KEY_FILE, "webhook secret key")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"threadneedle webhook secrets v1").derive(text.encode())


@dataclass(frozen=True)
class _DataKey:
    cipher: AESGCM
    destroy_after: float | None
    fetched: float


class SecretVault:
    """Seals and opens one store's webhook secrets (thread-safe; one per application)."""

    def __init__(self, tables: OutboxTables, key: bytes) -> None:
        self.tables = tables
        self._master = AESGCM(key)
        self._cache: dict[str, _DataKey] = {}
        self._lock = threading.Lock()
        self._swept = 0.0

    # --- sealing ----------------------------------------------------------------

    def seal(self, secret: str, subscription_id: str) -> Sealed:
        """A new data key for ``secret`` (stored now), and the secret sealed under it."""
        key_id = secrets.token_hex(16)
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce = os.urandom(NONCE_BYTES)
        wrapped = wrap_nonce + self._master.encrypt(wrap_nonce, data_key, key_id.encode())
        with self.tables.write() as cursor:
            self.tables.execute(cursor, "INSERT INTO {webhook_secret_keys} (key_id, "
                                         "subscription_id, wrapped) VALUES (?, ?, ?)",
                                 (key_id, subscription_id, wrapped))
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(data_key).encrypt(nonce, secret.encode(), key_id.encode())
        return {"key": key_id, "nonce": _b64(nonce), "sealed": _b64(sealed)}

    def open(self, sealed: Sealed | str, now: datetime) -> str:
        """The secret in clear; ``SecretUnreadable`` once its data key is destroyed."""
        if isinstance(sealed, str):  # a snapshot taken before secrets were sealed
            return sealed
        if CLEAR in sealed:  # recorded before secrets were sealed (see the module's note)
            return str(sealed[CLEAR])
        key_id = str(sealed["key"])
        data_key = self._data_key(key_id, epoch(now))
        try:
            return data_key.decrypt(_unb64(sealed["nonce"]), _unb64(sealed["sealed"]),
                                    key_id.encode()).decode()
        except InvalidTag:
            raise SecretUnreadable(f"secret {key_id} does not open with its key") from None

    def readable(self, sealed: Iterable[Sealed | str], now: datetime) -> list[str]:
        """The secrets of ``sealed`` that still open, in order (the others are left out)."""
        opened = []
        for one in sealed:
            try:
                opened.append(self.open(one, now))
            except SecretUnreadable:
                continue
        return opened

    def signing_secrets(self, subscription: Any, now: datetime) -> list[str]:
        """What signs a message sent at ``now``: the subscription's secrets that still open."""
        return self.readable(subscription.signing_secrets(now), now)

    # --- destroying ---------------------------------------------------------------

    def destroy_after(self, sealed: Sealed | str | None, at: datetime) -> None:
        """The secret becomes unreadable at ``at`` (never later than already set)."""
        if sealed is None or isinstance(sealed, str) or CLEAR in sealed:
            return  # a clear secret of an old event: nothing to destroy
        when = epoch(at)
        with self.tables.write() as cursor:
            self.tables.execute(
                cursor, "UPDATE {webhook_secret_keys} SET destroy_after = ? WHERE key_id = ? "
                        "AND (destroy_after IS NULL OR destroy_after > ?)",
                (when, str(sealed["key"]), when))
        with self._lock:
            self._cache.pop(str(sealed["key"]), None)

    def destroy(self, sealed: Iterable[Sealed | str | None], now: datetime) -> None:
        """Destroy these secrets' data keys now."""
        for one in sealed:
            self.destroy_after(one, now)
        self.destroy_expired(now, force=True)

    def destroy_expired(self, now: datetime, *, force: bool = False) -> int:
        """Delete the data keys whose time has come (at most once a minute unless forced)."""
        if not force and time.monotonic() - self._swept < SWEEP_SECONDS:
            return 0
        self._swept = time.monotonic()
        with self.tables.write() as cursor:
            gone = self.tables.execute(
                cursor, "DELETE FROM {webhook_secret_keys} WHERE destroy_after <= ?",
                (epoch(now),)).rowcount
        return int(gone)

    # --- data keys ------------------------------------------------------------------

    def _data_key(self, key_id: str, at: float) -> AESGCM:
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is None or time.monotonic() - cached.fetched > CACHE_SECONDS:
            cached = self._load(key_id)
            with self._lock:
                self._cache[key_id] = cached
        if cached.destroy_after is not None and at >= cached.destroy_after:
            raise SecretUnreadable(f"secret {key_id} was destroyed")
        return cached.cipher

    def _load(self, key_id: str) -> _DataKey:
        with self.tables.read() as cursor:
            row = self.tables.execute(
                cursor, "SELECT wrapped, destroy_after FROM {webhook_secret_keys} "
                        "WHERE key_id = ?", (key_id,)).fetchone()
        if row is None:
            raise SecretUnreadable(f"secret {key_id} was destroyed")
        wrapped = bytes(row["wrapped"])
        try:
            data_key = self._master.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:],
                                            key_id.encode())
        except InvalidTag:
            raise SecretUnreadable(f"secret {key_id} was wrapped under another master key") \
                from None
        until = row["destroy_after"]
        return _DataKey(AESGCM(data_key), None if until is None else float(until),
                        time.monotonic())


def epoch(moment: datetime) -> float:
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)).timestamp()


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _unb64(text: Any) -> bytes:
    return base64.b64decode(str(text))


def vault_for(ledger: Ledger) -> SecretVault:
    """A vault on the ledger's store.  A process uses the one its composition root built
    (``Services.vault``, ``workflows/bootstrap.py``); tests and tools may build their own:
    vaults on one store agree (every key is in its table), only their caches differ."""
    return SecretVault(OutboxTables(ledger), master_key(ledger.settings))
