"""The Guangzhou demo: three purchased-service contracts and their stakeholders' directives.

Loading is idempotent: an organisation already registered, a contract already
drafted or active, or a directive already issued (same issuer, subject and
summary) is left as it is, so loading twice records nothing new.  The
scenario's ``story`` then settles one conflict and escalates another, so that
replaying HZ-YOUTH-2008 tells how its reporting demands were sorted out; a
step whose conflict is no longer open at the level it names is already done.
Its last steps are SPEC §13's on LW-PILOT-2008: the admission list, the
provider's classification of a census dressed as a community activity, and
the residents' dispute of the bureau's head count (each skipped when done).  The demo
keys are kept in ``<var_dir>/demo-keys.json`` (mode 0600) so that a restart
shows the same keys; a key that no longer authenticates (a new event store)
is replaced.

Given the URL of the printing receiver (``needle up --demo`` starts one), the
load also subscribes it to every event type as the admin, so a new user sees
webhooks arrive when they issue a directive.  Its secret is kept in
``<var_dir>/demo-webhook.json`` (mode 0600), which the receiver reads to
verify signatures; a restart on another port moves the same subscription.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from domain.contract import DRAFT, ServiceContract
from domain.directives import Classification, DirectiveFields, Dispute
from domain.errors import NotFound
from domain.organisations import Caller, KeySpec, OrganisationSpec, Role
from domain.resolution import Decision, Escalation
from domain.subscriptions import SubscriptionPatch, SubscriptionSpec
from domain.terms import Admission, ContractTerms
from workflows import contracts, directives, directory, resolution, subscriptions
from workflows.identities import BOOTSTRAP_ADMIN, contract_id_for
from workflows.ledger import Ledger
from workflows.webhooks.vault import vault_for

DEMO_FILE = "guangzhou-demo.json"
KEYS_FILE = "demo-keys.json"
WEBHOOK_FILE = "demo-webhook.json"
"""The demo subscription's id, URL and secret: the printing receiver reads the secret here."""
WEBHOOK_DESCRIPTION = "Threadneedle demo: the printing receiver started by needle up --demo"
# The operators' own organisation: it holds the demo admin key.
OPERATORS = OrganisationSpec(id="threadneedle", name="Threadneedle 运维 operators", kind="other")
# The city's social work association oversees every contract: it holds the supervisor key.
SUPERVISING_ORG = "gz-swa"


@dataclass(frozen=True)
class DemoKey:
    role: str
    org: str
    id: str
    key: str


@dataclass(frozen=True)
class DemoContract:
    code: str
    id: str
    title: str
    version: int
    directives: int


@dataclass(frozen=True)
class DemoWebhook:
    id: str
    url: str
    secret: str


@dataclass(frozen=True)
class DemoLoad:
    contracts: list[DemoContract]
    keys: list[DemoKey]
    recorded: int
    """How many commands this load recorded (0 when the demo was already there)."""
    webhook: DemoWebhook | None = None
    """The printing receiver's subscription, when the load was given its URL."""


def demo_data() -> dict[str, Any]:
    """The demo scenario shipped inside the package."""
    text = resources.files("cli").joinpath("demo_data", DEMO_FILE).read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def load_demo(app: Ledger, var_dir: Path, data: dict[str, Any] | None = None,
              webhook_url: str | None = None) -> DemoLoad:
    """Register, draft, activate and issue everything in the scenario; create the demo keys.

    With ``webhook_url``, subscribe it first (``subscribe_demo_receiver``), so
    that the scenario's own events reach the receiver too.
    """
    data = data or demo_data()
    admin = BOOTSTRAP_ADMIN
    recorded = 0
    webhook = subscribe_demo_receiver(app, var_dir, webhook_url) if webhook_url else None

    known = {org["id"] for org in directory.list_organisations(app, admin)}
    for org in [OPERATORS.model_dump(), *data["organizations"]]:
        if org["id"] not in known:
            directory.register_organisation(app, admin, OrganisationSpec(**org))
            recorded += 1

    keys, created = _demo_keys(app, var_dir, _wanted_keys(data))
    recorded += created
    callers = {(k.org, k.role): Caller(principal_id=k.id, org=k.org, role=Role(k.role))
               for k in keys}

    shown: list[DemoContract] = []
    for contract in data["contracts"]:
        terms = ContractTerms(**{k: v for k, v in contract.items() if k != "directives"})
        contract_id = str(contract_id_for(terms.code))
        try:
            current = contracts.read_contract(app, admin, contract_id)
        except NotFound:
            contracts.draft_contract(app, admin, terms)
            recorded += 1
            current = contracts.read_contract(app, admin, contract_id)
        if current.status == DRAFT:
            contracts.transition(app, admin, contract_id, "activate")
            recorded += 1
            current = contracts.read_contract(app, admin, contract_id)
        issued = {(d["issuer"], d["subject"], d["summary"]) for d in current.directives.values()}
        for directive in contract["directives"]:
            issuer = directive["issuer"]
            fields = DirectiveFields(**{k: v for k, v in directive.items() if k != "issuer"})
            if (issuer, fields.subject, fields.summary) in issued:
                continue
            directives.issue_directive(app, callers[(issuer, Role.STAKEHOLDER.value)],
                                       contract_id, fields)
            recorded += 1
    for step in data.get("story", []):
        recorded += _tell(app, step, callers) if "conflict" in step else _ask(app, step, callers)
    for code in (c["code"] for c in data["contracts"]):
        contract_id = str(contract_id_for(code))
        current = contracts.read_contract(app, admin, contract_id)
        shown.append(DemoContract(
            code=current.code, id=contract_id, title=current.terms["title"],
            version=current.version, directives=len(current.directives),
        ))
    return DemoLoad(contracts=shown, keys=keys, recorded=recorded, webhook=webhook)


def subscribe_demo_receiver(app: Ledger, var_dir: Path, url: str) -> DemoWebhook:
    """Make sure one enabled admin subscription for ``*`` sends to ``url``; keep its secret.

    The subscription recorded in ``demo-webhook.json`` is reused (moved to
    ``url`` and re-enabled if need be).  Without that file its secret is
    lost, so a demo subscription left from before is deleted and a new one
    made.  ``url`` must pass the SSRF guard: the demo allows 127.0.0.0/8
    (``NEEDLE_WEBHOOK_ALLOWED_CIDRS``).
    """
    admin = BOOTSTRAP_ADMIN
    path = var_dir / WEBHOOK_FILE
    kept = read_demo_webhook(path)
    if kept is not None:
        try:
            subscription = subscriptions.read_subscription(app, admin, kept.id)
        except NotFound:
            subscription = None
        if subscription is not None:
            if subscription.url != url or not subscription.enabled:
                subscriptions.update_subscription(app, admin, kept.id,
                                                  SubscriptionPatch(url=url, enabled=True))
            webhook = DemoWebhook(id=kept.id, url=url, secret=kept.secret)
            if webhook != kept:
                _write_private(path, asdict(webhook))
            return webhook
    for stale in subscriptions.list_subscriptions(app, admin):
        if stale["description"] == WEBHOOK_DESCRIPTION:
            subscriptions.delete_subscription(app, vault_for(app), admin, stale["id"])
    result = subscriptions.create_subscription(app, vault_for(app), admin, SubscriptionSpec(
        url=url, event_types=["*"], description=WEBHOOK_DESCRIPTION))
    assert result.extra is not None and result.extra["secret"]
    webhook = DemoWebhook(id=result.id, url=url, secret=result.extra["secret"])
    _write_private(path, asdict(webhook))
    return webhook


def read_demo_webhook(path: Path) -> DemoWebhook | None:
    try:
        return DemoWebhook(**json.loads(path.read_text("utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None


def _tell(app: Ledger, step: dict[str, Any], callers: dict[tuple[str, str], Caller]) -> int:
    """One step of the story: a resolver decides or escalates a conflict, unless it is done.

    The conflict is found by its kind and subject among the open ones (its id
    derives from directive ids the server assigned); directives are named by
    their issuers.  Answers how many commands it recorded.
    """
    contract_id = str(contract_id_for(step["contract"]))
    resolver = callers[(step["by"], Role.RESOLVER.value)]
    contract = contracts.read_contract(app, resolver, contract_id)
    conflict = _open_conflict(contract, **step["conflict"])
    if conflict is None:
        return 0
    if step["action"] == "resolve":
        issuer = {key: contract.directives[key]["issuer"] for key in conflict["members"]}
        decision = Decision(
            outcome=step["outcome"],
            upheld=[key for key in conflict["members"] if issuer[key] in step["upheld_issuers"]],
            overridden=[key for key in conflict["members"]
                        if issuer[key] in step["overridden_issuers"]],
            rationale=step["rationale"],
        )
        resolution.resolve_conflict(app, resolver, contract_id, conflict["id"], decision)
        return 1
    if conflict["level"] != step["from_level"]:
        return 0
    escalation = Escalation(from_level=step["from_level"], reason=step["reason"])
    resolution.escalate_conflict(app, resolver, contract_id, conflict["id"], escalation)
    return 1


def _ask(app: Ledger, step: dict[str, Any], callers: dict[tuple[str, str], Caller]) -> int:
    """A step of section 13 (who may ask for what), unless it is done: the admin replaces
    an admission list, the provider classifies a directive, a party disputes one.

    Directives are named by issuer and subject.  Answers how many commands it recorded.
    """
    contract_id = str(contract_id_for(step["contract"]))
    contract = contracts.read_contract(app, BOOTSTRAP_ADMIN, contract_id)
    if step["action"] == "admission":
        admission = Admission.model_validate({"admission": step["admission"]})
        if contract.terms.get("admission") == admission.model_dump(mode="json")["admission"]:
            return 0
        directives.change_admission(app, BOOTSTRAP_ADMIN, contract_id, admission)
        return 1
    named = step["directive"]
    directive = next(d for d in contract.directives.values()
                     if (d["issuer"], d["subject"]) == (named["issuer"], named["subject"]))
    if step["action"] == "classify":
        if directive.get("classification"):
            return 0
        provider = callers[(step["by"], Role.RESOLVER.value)]
        directives.classify_directive(app, provider, contract_id, directive["id"], Classification(
            task_type=step["task_type"], add_tags=step["add_tags"], note=step["note"]))
        return 1
    if any(d["by"] == step["by"] for d in directive.get("disputes", [])):
        return 0
    party = callers[(step["by"], Role.STAKEHOLDER.value)]
    directives.dispute_directive(app, party, contract_id, directive["id"], Dispute.model_validate(
        {"fields": step["fields"], "reason": step["reason"]}))
    return 1


def _open_conflict(contract: ServiceContract, *, kind: str, subject: str) -> dict[str, Any] | None:
    """The open conflict of ``kind`` on ``subject``, the most recently opened if several."""
    found = [record for record in contract.conflicts.values()
             if record["status"] == "open" and record["kind"] == kind
             and record["details"].get("subject") == subject]
    return max(found, key=lambda record: record["opened_version"], default=None)


def _wanted_keys(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(org, role) of every demo key: admin, supervisor, each stakeholder, each resolver."""
    wanted = [(OPERATORS.id, Role.ADMIN.value), (SUPERVISING_ORG, Role.SUPERVISOR.value)]
    for contract in data["contracts"]:
        wanted += [(s["org"], Role.STAKEHOLDER.value) for s in contract["stakeholders"]]
    for contract in data["contracts"]:
        wanted += [(org, Role.RESOLVER.value) for org in contract["escalation_chain"]]
    return list(dict.fromkeys(wanted))


def _demo_keys(
    app: Ledger, var_dir: Path, wanted: list[tuple[str, str]]
) -> tuple[list[DemoKey], int]:
    path = var_dir / KEYS_FILE
    kept = {(k.org, k.role): k for k in read_demo_keys(path)}
    keys, created = [], 0
    for org, role in wanted:
        key = kept.get((org, role))
        caller = directory.authenticate(app, key.key) if key else None
        if key is None or caller is None or (caller.org, caller.role.value) != (org, role):
            result = directory.create_key(app, BOOTSTRAP_ADMIN, KeySpec(org=org, role=Role(role)))
            assert result.extra is not None
            key = DemoKey(role=role, org=org, id=result.id, key=result.extra["key"])
            created += 1
        keys.append(key)
    if created or len(kept) != len(keys):
        write_demo_keys(path, keys)
    return keys, created


def read_demo_keys(path: Path) -> list[DemoKey]:
    try:
        entries = json.loads(path.read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return []
    return [DemoKey(**entry) for entry in entries]


def write_demo_keys(path: Path, keys: list[DemoKey]) -> None:
    """Write the keys readable by their owner only, replacing the file in one step."""
    _write_private(path, [asdict(k) for k in keys])


def _write_private(path: Path, content: Any) -> None:
    """Write JSON readable by its owner only, replacing the file in one step."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(content, file, ensure_ascii=False, indent=2)
    os.replace(temporary, path)


@dataclass(frozen=True)
class DemoConflict:
    code: str
    kind: str
    explanation: str


def open_conflicts(client: Any, contracts: list[DemoContract]) -> list[DemoConflict]:
    """The open conflicts of the demo contracts, as the live conflict view shows them."""
    from workflows.view_store import read_contract_view

    found = []
    for contract in contracts:
        view = read_contract_view(client, "conflicts", contract.id).value or {}
        for conflict in view.get("conflicts", []):
            if conflict["status"] == "open":
                found.append(DemoConflict(contract.code, conflict["kind"],
                                          conflict["explanation"]))
    return found
