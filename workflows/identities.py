"""The ids the service derives and the callers it acts as itself.

Contract ids derive from their unique code, so the store itself refuses a
second contract with the same code; the directory and the subscription
registry are one aggregate each, at a fixed id.
"""

from __future__ import annotations

from uuid import UUID, uuid5

from domain.organisations import Caller, Role

NAMESPACE = UUID("2b0f6c3e-5a71-4d8e-b3c9-0d4e5f6a7b8c")
DIRECTORY_ID = uuid5(NAMESPACE, "directory")
SUBSCRIPTION_REGISTRY_ID = uuid5(NAMESPACE, "webhook-subscriptions")
SUBSCRIPTION_NAMESPACE = uuid5(NAMESPACE, "webhook-subscription")

BOOTSTRAP_ADMIN = Caller(
    principal_id=str(uuid5(NAMESPACE, "bootstrap-admin")), org="threadneedle", role=Role.ADMIN
)
"""Who the admin key (``NEEDLE_ADMIN_KEY``) and the tools act as."""
SLA_TIMER = Caller(
    principal_id=str(uuid5(NAMESPACE, "sla-timer")), org="threadneedle", role=Role.SUPERVISOR
)
"""Who the deadline timer acts as: it reads every contract and records escalations only."""
WEBHOOK_DELIVERY = Caller(
    principal_id=str(uuid5(NAMESPACE, "webhook-delivery")), org="threadneedle",
    role=Role.SUPERVISOR,
)
"""Who the delivery workers act as when they disable an endpoint (after a 410, or failing)."""


def contract_id_for(code: str) -> UUID:
    """Contract ids derive from their unique code, so the store itself refuses a second one."""
    return uuid5(NAMESPACE, f"contract\x00{code}")
