"""The production profile refuses settings that would be unsafe there (workflows/settings.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from workflows.settings import Settings

PRODUCTION = {
    "environment": "production",
    "event_store": "postgresql://postgres@127.0.0.1:5432/threadneedle",
    "redis_url": "redis://127.0.0.1:6379/0",
    "admin_key": "广州-海珠区-admin-key-of-32-characters-or-more",
    "chain_key": "广州-chain-anchor-key-of-32-characters-or-more",
    "webhook_secret_key": "广州-webhook-secret-key-of-32-characters-or-more",
}


def test_a_complete_production_profile_is_accepted() -> None:
    settings = Settings(**PRODUCTION)
    assert settings.uses_postgres
    assert settings.webhook_lease_seconds == 60.0


@pytest.mark.parametrize(("changed", "named"), [
    ({"event_store": "var/threadneedle.sqlite"}, "NEEDLE_EVENT_STORE"),
    ({"redis_url": None}, "NEEDLE_REDIS_URL"),
    ({"admin_key": "short-but-16-chars"}, "NEEDLE_ADMIN_KEY"),
    ({"chain_key": None}, "NEEDLE_CHAIN_KEY"),
    ({"chain_key": "short-chain-key"}, "NEEDLE_CHAIN_KEY"),
    ({"webhook_secret_key": None}, "NEEDLE_WEBHOOK_SECRET_KEY"),
    ({"webhook_secret_key": "short-webhook-key"}, "NEEDLE_WEBHOOK_SECRET_KEY"),
    ({"webhook_lease_seconds": 29.0}, "NEEDLE_WEBHOOK_LEASE_SECONDS of at least 30"),
])
def test_production_refuses_an_unsafe_setting(changed: dict[str, object], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        Settings(**(PRODUCTION | changed))


def test_development_allows_a_short_lease_for_tests() -> None:
    assert Settings(webhook_lease_seconds=5.0).webhook_lease_seconds == 5.0
