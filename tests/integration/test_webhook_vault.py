"""Webhook signing secrets encrypted at rest (issue 11), on the real event store.

No event holds a secret in clear; a delivery signs with the opened secret
(verified by the Standard Webhooks reference library); a rotated secret
becomes unreadable when its 24 h overlap ends, and a deleted subscription's
at once, for any process holding the master key: its data key is destroyed.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from domain.subscriptions import ROTATION_OVERLAP, SubscriptionSpec
from domain.webhooks import Message
from workflows import subscriptions
from workflows.identities import BOOTSTRAP_ADMIN
from workflows.ledger import Ledger
from workflows.settings import Settings
from workflows.webhooks.delivery import Delivery
from workflows.webhooks.outbox import Outbox
from workflows.webhooks.outbox.records import DELIVERED, Entry, Lane
from workflows.webhooks.outbox.tables import OutboxTables
from workflows.webhooks.ssrf import parse_allowed_cidrs
from workflows.webhooks.transport import WebhookClient
from workflows.webhooks.vault import KEY_FILE, SecretUnreadable, SecretVault, master_key, vault_for

from .webhook_receiver import Answer, Receiver

CONTRACT = "3f1c2b8e-7d5a-4e21-9c0b-6a4d2e1f0b7c"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(webhook_allowed_cidrs="127.0.0.0/8")


@pytest.fixture
def app(settings: Settings) -> Iterator[Ledger]:
    application = Ledger(settings)
    yield application
    application.close()


def subscribe(app: Ledger, url: str = "http://127.0.0.1:9/hook") -> tuple[str, str]:
    result = subscriptions.create_subscription(app, vault_for(app), BOOTSTRAP_ADMIN,
                                               SubscriptionSpec(
        url=url, event_types=["*"], description="越秀区 密钥测试"))
    assert result.extra is not None
    return result.id, str(result.extra["secret"])


def stored_bytes(app: Ledger) -> bytes:
    """Every event in the store, as stored."""
    notifications = app.recorder.select_notifications(start=1, limit=1_000_000)
    return b"".join(bytes(n.state) for n in notifications)


def fresh_vault(app: Ledger) -> SecretVault:
    """What another process holding the same master key would open with (no cache)."""
    return SecretVault(OutboxTables(app), master_key(app.settings))


def test_no_event_holds_a_secret_in_clear_and_deliveries_sign_with_it(
    app: Ledger,
) -> None:
    with Receiver([Answer(204)]).running() as receiver:
        # Given a subscription, its secret rotated, and a message for it
        subscription_id, first = subscribe(app, receiver.url())
        rotated = subscriptions.rotate_secret(app, vault_for(app), BOOTSTRAP_ADMIN,
                                              subscription_id).extra
        assert rotated is not None
        second = str(rotated["secret"])
        now = datetime.now(UTC)
        Outbox(app).dispatch.append([Entry(subscription_id, Message("directive.issued", {
            "contract_id": CONTRACT, "contract_version": 2, "summary": "每周报送"}), 1, 0, now)],
            now)

        # When it is delivered
        client = WebhookClient(parse_allowed_cidrs("127.0.0.0/8"), timeout=5)
        Delivery(app, Outbox(app), client, schedule=(1.0,)).deliver_lane(
            Lane(subscription_id, CONTRACT))

    # Then neither secret, nor its base64 part, is in any stored event (which are stored
    # as readable JSON: the subscription's description is there as it was given)
    stored = stored_bytes(app)
    assert "越秀区 密钥测试".encode() in stored
    for secret in (first, second):
        assert secret.encode() not in stored
        assert secret.removeprefix("whsec_").encode() not in stored
    # And the receiver verifies the message with either secret (both sign for a day)
    assert Outbox(app).log.counts(subscription_id)[DELIVERED] == 1
    (request,) = receiver.received
    for secret in (first, second):
        assert Webhook(secret).verify(request.body, request.headers)["type"] == \
            "directive.issued"


def test_a_rotated_secret_becomes_unreadable_when_its_overlap_ends(app: Ledger) -> None:
    # Given a subscription whose secret was rotated
    subscription_id, first = subscribe(app)
    subscriptions.rotate_secret(app, vault_for(app), BOOTSTRAP_ADMIN, subscription_id)
    subscription = subscriptions.load_subscription(app, subscription_id)
    assert subscription.previous_secret is not None
    retired = subscription.previous_secret
    until = datetime.fromisoformat(str(subscription.previous_secret_until))
    assert until - datetime.now(UTC) <= ROTATION_OVERLAP
    vault = vault_for(app)

    # Then during the overlap it still opens, for this process and any other
    assert vault.open(retired, until - timedelta(seconds=1)) == first
    assert fresh_vault(app).open(retired, until - timedelta(seconds=1)) == first

    # When the overlap ends: it no longer opens, and the sweep destroys its data key
    with pytest.raises(SecretUnreadable):
        vault.open(retired, until)
    assert vault.destroy_expired(until, force=True) == 1
    # so that not even a look at an earlier moment, in a new process, opens it again
    with pytest.raises(SecretUnreadable):
        fresh_vault(app).open(retired, until - timedelta(hours=1))
    # while the current secret still opens
    assert fresh_vault(app).signing_secrets(subscription, until) != []


def test_a_second_rotation_and_a_deletion_destroy_the_retired_secrets_at_once(
    app: Ledger,
) -> None:
    # Given a subscription rotated twice within a day
    subscription_id, _ = subscribe(app)
    first = subscriptions.load_subscription(app, subscription_id).secret
    subscriptions.rotate_secret(app, vault_for(app), BOOTSTRAP_ADMIN, subscription_id)
    second = subscriptions.load_subscription(app, subscription_id).secret
    subscriptions.rotate_secret(app, vault_for(app), BOOTSTRAP_ADMIN, subscription_id)
    now = datetime.now(UTC)
    # Then the first, dropped by the second rotation, is gone at once; the second still opens
    with pytest.raises(SecretUnreadable):
        fresh_vault(app).open(first, now)
    assert fresh_vault(app).open(second, now).startswith("whsec_")
    # When the subscription is deleted, its secrets are destroyed with it
    current = subscriptions.load_subscription(app, subscription_id).secret
    subscriptions.delete_subscription(app, vault_for(app), BOOTSTRAP_ADMIN, subscription_id)
    for sealed in (second, current):
        with pytest.raises(SecretUnreadable):
            fresh_vault(app).open(sealed, now)


def test_without_a_configured_key_development_makes_one_under_var(
    app: Ledger, settings: Settings, make_settings: Callable[..., Settings],
) -> None:
    # Given development settings without NEEDLE_WEBHOOK_SECRET_KEY
    subscription_id, secret = subscribe(app)
    key_file = Path(settings.var_dir) / KEY_FILE
    # Then a key file was made under var/, readable by its owner only
    assert key_file.exists() and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    sealed = subscriptions.load_subscription(app, subscription_id).secret
    assert fresh_vault(app).open(sealed, datetime.now(UTC)) == secret
    # And a vault with another master key cannot open what this one sealed
    other = make_settings(webhook_secret_key="另一把钥匙-another-master-key-of-32-characters")
    stranger = SecretVault(OutboxTables(app), master_key(other))
    with pytest.raises(SecretUnreadable):
        stranger.open(sealed, datetime.now(UTC))


def test_secrets_recorded_before_sealing_still_sign(app: Ledger) -> None:
    # Given secrets as an event, or a snapshot, recorded before issue 11 hold them
    vault, now = vault_for(app), datetime.now(UTC)
    for legacy in ({"clear": "whsec_b2xkLXNlY3JldA=="}, "whsec_b2xkLXNlY3JldA=="):
        # Then they open as they are, and there is no data key of theirs to destroy
        assert vault.open(legacy, now) == "whsec_b2xkLXNlY3JldA=="
        vault.destroy([legacy], now)
        assert vault.readable([legacy], now) == ["whsec_b2xkLXNlY3JldA=="]
