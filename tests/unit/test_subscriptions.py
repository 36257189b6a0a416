"""Webhook subscriptions as an aggregate: filter, status, secrets and their rotation (pure)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, cast
from uuid import UUID, uuid5

import pytest

from domain.chain import ChainedAggregate, verify_chain
from domain.errors import NotFound, ValidationFailed
from domain.organisations import Role
from domain.subscriptions import (
    BY_OWNER,
    DISABLED,
    ENABLED,
    FAILING,
    GONE,
    ROTATION_OVERLAP,
    Subscription,
    SubscriptionPatch,
    SubscriptionRegistry,
    SubscriptionSpec,
)
from workflows.settings import Settings

from .givens import TEST_NAMESPACE, actor_of, caller, moment

SUBSCRIPTION_ID = uuid5(TEST_NAMESPACE, "subscription")
CONTRACT = str(uuid5(TEST_NAMESPACE, "HZ-YOUTH-2008"))
STREET = caller("jiangnan-street", Role.STAKEHOLDER)


def sealed_secret(key: str) -> dict[str, str]:
    """A sealed secret as ``workflows.webhooks.vault`` makes one (opaque to the domain)."""
    return {"key": key, "nonce": "bm9uY2Utbm9uY2U=", "sealed": f"c2VhbGVk-{key}"}


FIRST_SECRET, SECOND_SECRET, THIRD_SECRET = (sealed_secret(k) for k in ("k1", "k2", "k3"))


def chained(subscription: Subscription) -> list[ChainedAggregate.Event]:
    return cast("list[ChainedAggregate.Event]", subscription.collect_events())


def subscribe(**overrides: Any) -> Subscription:
    given: dict[str, Any] = {
        "subscription_id": SUBSCRIPTION_ID, "owner": STREET,
        "url": "https://hooks.example.org/街道", "event_types": ["conflict.*", "directive.issued"],
        "contracts": None, "description": "江南中街的冲突通知 conflicts for the street office",
        "secret": FIRST_SECRET, "actor": actor_of("jiangnan-street"), "at": moment("2008-06-02"),
    }
    given.update(overrides)
    return Subscription.subscribe(**given)


def test_a_subscription_starts_enabled_and_shows_no_secret() -> None:
    # Given a street office's subscription with a Chinese description
    subscription = subscribe()
    shown = subscription.as_dict()
    # Then it is enabled (the API's "active") and owned by the key's organisation and role
    assert subscription.status == ENABLED and subscription.enabled
    assert shown["status"] == "active" and shown["disabled_reason"] is None
    assert shown["owner"] == {"org": "jiangnan-street", "role": "stakeholder"}
    assert shown["description"] == "江南中街的冲突通知 conflicts for the street office"
    assert shown["contracts"] is None
    # And no secret appears anywhere in what it shows
    assert FIRST_SECRET["sealed"] not in repr(shown) and "secret" not in shown


def test_unknown_event_types_are_refused() -> None:
    with pytest.raises(ValidationFailed) as refused:
        subscribe(event_types=["directive.issued", "contract.exploded"])
    assert refused.value.errors[0][0] == "event_types"
    assert "contract.exploded" in refused.value.errors[0][1]


def test_contracts_are_kept_as_canonical_uuids_and_a_non_uuid_is_refused() -> None:
    subscription = subscribe(contracts=[CONTRACT.upper(), CONTRACT])
    assert subscription.contracts == [CONTRACT]
    with pytest.raises(ValidationFailed) as refused:
        subscribe(contracts=["HZ-YOUTH-2008"])
    assert refused.value.errors[0][0] == "contracts"


def test_the_filter_carries_owner_types_and_contracts() -> None:
    # Given a subscription naming one contract
    subscription = subscribe(contracts=[CONTRACT])
    # When the dispatcher asks for its filter
    wanted = subscription.filter()
    # Then it is the owner organisation and role, the types and the contract
    assert (wanted.owner.org, wanted.owner.role) == ("jiangnan-street", Role.STAKEHOLDER)
    assert wanted.event_types == ("conflict.*", "directive.issued")
    assert wanted.contracts == frozenset({CONTRACT})


def test_a_change_records_only_what_differs() -> None:
    subscription = subscribe()
    at = moment("2008-06-03")
    # When the owner sends the same description and a new URL
    subscription.change({"description": subscription.description,
                         "url": "https://hooks.example.org/new"},
                        actor=actor_of("jiangnan-street"), at=at)
    # Then one event records only the URL
    (event,) = chained(subscription)[1:]
    assert event.data == {"url": "https://hooks.example.org/new"}
    # And a change to nothing new records nothing
    subscription.change({"url": "https://hooks.example.org/new"},
                        actor=actor_of("jiangnan-street"), at=at)
    assert not subscription.pending_events
    # And changing the types checks them again
    with pytest.raises(ValidationFailed):
        subscription.change({"event_types": ["conflict.nope"]},
                            actor=actor_of("jiangnan-street"), at=at)


def test_disabling_keeps_the_first_reason_and_re_enabling_clears_it() -> None:
    subscription = subscribe()
    system = {"org": "threadneedle", "principal": "delivery"}
    # When the endpoint answers 410, and later also counts as failing
    subscription.disable(GONE, actor=system, at=moment("2008-06-03"))
    subscription.disable(FAILING, actor=system, at=moment("2008-06-04"))
    # Then it is disabled because it is gone, recorded once
    assert (subscription.status, subscription.disabled_reason) == (DISABLED, GONE)
    assert subscription.as_dict()["status"] == "disabled"
    assert len(subscription.collect_events()) == 2
    # When the owner re-enables it
    subscription.enable(actor=actor_of("jiangnan-street"), at=moment("2008-06-05"))
    # Then it delivers again, and enabling an enabled one records nothing
    assert subscription.enabled and subscription.disabled_reason is None
    subscription.enable(actor=actor_of("jiangnan-street"), at=moment("2008-06-05"))
    assert len(subscription.collect_events()) == 1
    with pytest.raises(ValueError, match="unknown reason"):
        subscription.disable("bored", actor=system, at=moment("2008-06-06"))


def test_after_a_rotation_both_secrets_sign_for_a_day() -> None:
    subscription = subscribe()
    rotated_at = moment("2008-06-10", 15)
    # Before any rotation, one secret signs
    assert subscription.signing_secrets(rotated_at) == [FIRST_SECRET]
    # When the secret is rotated
    subscription.rotate_secret(SECOND_SECRET, actor=actor_of("jiangnan-street"), at=rotated_at)
    # Then the new one signs first and the old one too, until 24 hours have passed
    assert subscription.signing_secrets(rotated_at) == [SECOND_SECRET, FIRST_SECRET]
    just_before = rotated_at + ROTATION_OVERLAP - timedelta(seconds=1)
    assert subscription.signing_secrets(just_before) == [SECOND_SECRET, FIRST_SECRET]
    assert subscription.signing_secrets(rotated_at + ROTATION_OVERLAP) == [SECOND_SECRET]
    # And a second rotation within the day drops the oldest: at most two sign
    subscription.rotate_secret(THIRD_SECRET, actor=actor_of("jiangnan-street"),
                               at=rotated_at + timedelta(hours=1))
    assert subscription.signing_secrets(rotated_at + timedelta(hours=2)) == \
        [THIRD_SECRET, SECOND_SECRET]
    # And the secret never shows, though the rotation's end does
    assert subscription.as_dict()["previous_secret_until"] == \
        (rotated_at + timedelta(hours=1) + ROTATION_OVERLAP).isoformat()
    assert SECOND_SECRET["sealed"] not in repr(subscription.as_dict())


def test_a_deleted_subscription_accepts_no_command() -> None:
    subscription = subscribe()
    subscription.delete(actor=actor_of("jiangnan-street"), at=moment("2008-06-03"))
    assert subscription.deleted and not subscription.enabled
    with pytest.raises(NotFound):
        subscription.enable(actor=actor_of("jiangnan-street"), at=moment("2008-06-04"))
    with pytest.raises(NotFound):
        subscription.rotate_secret(SECOND_SECRET, actor=actor_of("jiangnan-street"),
                                   at=moment("2008-06-04"))


def test_the_history_of_a_subscription_is_chained() -> None:
    subscription = subscribe()
    subscription.disable(BY_OWNER, actor=actor_of("jiangnan-street"), at=moment("2008-06-03"))
    subscription.rotate_secret(SECOND_SECRET, actor=actor_of("jiangnan-street"),
                               at=moment("2008-06-04"))
    assert verify_chain(chained(subscription)).verified


def test_the_registry_lists_live_subscriptions_by_organisation() -> None:
    registry = SubscriptionRegistry.open(registry_id=UUID(int=7), actor=actor_of("threadneedle"),
                                         at=moment("2008-06-01"))
    street = subscribe()
    residents = subscribe(subscription_id=uuid5(TEST_NAMESPACE, "residents"),
                          owner=caller("jiangnan-residents", Role.STAKEHOLDER))
    registry.add(street, actor=actor_of("jiangnan-street"), at=moment("2008-06-02"))
    registry.add(residents, actor=actor_of("jiangnan-residents"), at=moment("2008-06-02"))
    assert registry.ids() == [str(street.id), str(residents.id)]
    assert registry.ids("jiangnan-residents") == [str(residents.id)]
    registry.remove(street.id, actor=actor_of("jiangnan-street"), at=moment("2008-06-03"))
    registry.remove(street.id, actor=actor_of("jiangnan-street"), at=moment("2008-06-03"))
    assert registry.ids() == [str(residents.id)]
    assert len(registry.collect_events()) == 4


def test_request_models_refuse_unknown_fields_and_empty_or_null_changes() -> None:
    with pytest.raises(ValueError, match="extra"):
        SubscriptionSpec.model_validate({"url": "https://a.example", "event_types": ["*"],
                                         "secret": "mine"})
    with pytest.raises(ValueError, match=r"at least 1"):
        SubscriptionSpec.model_validate({"url": "https://a.example", "event_types": []})
    with pytest.raises(ValueError, match="at least one field"):
        SubscriptionPatch.model_validate({})
    with pytest.raises(ValueError, match="url cannot be null"):
        SubscriptionPatch.model_validate({"url": None})
    with pytest.raises(ValueError, match="bool"):
        SubscriptionPatch.model_validate({"enabled": "yes"})
    widened = SubscriptionPatch.model_validate({"contracts": None})
    assert widened.model_fields_set == {"contracts"} and widened.contracts is None


def test_webhook_settings_are_checked_at_start_up() -> None:
    # Given the defaults, the webhook settings the delivery parts use
    settings = Settings()
    assert settings.webhook_disable_after_seconds == 5 * 24 * 3600
    assert (settings.webhook_endpoint_concurrency, settings.webhook_lease_seconds,
            settings.webhook_sweep_seconds) == (4, 60, 1.0)
    # When a schedule or an allow-list cannot be read, the settings are refused
    with pytest.raises(ValueError, match="'soon' is not a number"):
        Settings(webhook_retry_schedule="5,soon")
    with pytest.raises(ValueError, match="'localhost' is not a network"):
        Settings(webhook_allowed_cidrs="127.0.0.0/8,localhost")
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings(webhook_endpoint_concurrency=0)
    assert Settings(webhook_allowed_cidrs="127.0.0.0/8, ::1/128").webhook_allowed_cidrs


def test_a_secret_in_clear_is_refused_so_that_no_event_holds_one() -> None:
    # Given the secret a caller is shown (issue 11: events kept it in clear)
    for clear in ("whsec_Zmlyc3Q=", {"clear": "whsec_Zmlyc3Q="}, {}, {"key": "k1"}):
        with pytest.raises(ValueError, match="sealed"):
            subscribe(secret=clear)
    subscription = subscribe()
    with pytest.raises(ValueError, match="sealed"):
        subscription.rotate_secret("whsec_c2Vjb25k", actor=actor_of("jiangnan-street"),
                                   at=moment("2008-06-03"))
    with pytest.raises(ValueError, match="new secret"):
        subscription.rotate_secret(dict(FIRST_SECRET), actor=actor_of("jiangnan-street"),
                                   at=moment("2008-06-03"))
    # And what the events record is the sealed form only
    recorded = [event.data.get("secret") for event in chained(subscription)]
    assert recorded == [FIRST_SECRET]


def test_an_event_recorded_before_sealing_is_read_as_a_clear_secret() -> None:
    # Given events as recorded before issue 11: the secret in clear, in data
    subscription = subscribe()
    rotated_at = moment("2008-06-10", 15)
    subscription.rotate_secret(SECOND_SECRET, actor=actor_of("jiangnan-street"), at=rotated_at)
    events = chained(subscription)
    events[0].data["secret"] = "whsec_b2xkLWZpcnN0"
    events[1].data["secret"] = "whsec_b2xkLXNlY29uZA=="
    # When they are replayed
    replayed: Any = None
    for event in events:
        replayed = event.mutate(replayed)
    # Then the clear secrets read as {"clear": ...} (the vault opens those as they are),
    # and the data the chain hashed is as recorded
    assert replayed.signing_secrets(rotated_at) == [
        {"clear": "whsec_b2xkLXNlY29uZA=="}, {"clear": "whsec_b2xkLWZpcnN0"}]
    assert events[0].data["secret"] == "whsec_b2xkLWZpcnN0"
