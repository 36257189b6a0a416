"""The API's answers: their shapes, for the OpenAPI document (SPEC §9, §4, §5, §12, §13).

Request bodies come from the domain (``domain.terms``, ``domain.directives``, …);
the webhook answers are in ``api.webhook_responses``.  Commands answer small
models that FastAPI validates.  Reads that hand back the domain's own records — a
contract, its views, the board, history, a diff, lists — are ``documented``: the document
shows their model, and the answer goes out as it does without one (a plain dict,
serialised by pydantic's core), never validated field by field: validating a
5,000-directive priority view through these models takes ten times as long as
serialising it.  The e2e fuzzer holds every answer to its model
(``response_schema_conformance``).  Every shape allows more fields than it names
(SPEC §9: "add fields freely").  Names must not repeat a request body's (``Window``,
``Weights``, ``Escalation``): FastAPI would rename both in the document.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema


def documented(model: type[BaseModel], **headers: dict[str, Any]) -> dict[str, Any]:
    """Route arguments for a read whose answer ``model`` documents but nothing validates:
    its runtime type stays ``dict[str, Any]``, its schema is a reference to ``model``.
    ``headers``: the answer's headers, by name (``_`` for ``-``), as OpenAPI describes them."""
    reference = {"$ref": f"#/components/schemas/{model.__name__}"}
    answer: dict[str, Any] = {"model": model}
    if headers:
        answer["headers"] = {name.replace("_", "-"): header for name, header in headers.items()}
    return {
        "response_model": Annotated[dict[str, Any], WithJsonSchema(reference)],
        "responses": {200: answer},
    }


def position_header(*, required: bool) -> dict[str, Any]:
    """``X-Projection-Position``: the position of the live view the answer carries."""
    return {
        "description": "The global position the live view has reached (live views only)",
        "required": required,
        "schema": {"type": "integer", "minimum": 0},
    }


class Shape(BaseModel):
    model_config = ConfigDict(extra="allow")


# --- commands ----------------------------------------------------------------------


class CommandResult(BaseModel):
    id: str = Field(description="The id of what was created or changed")
    version: int = Field(description="The new version of the aggregate the command changed")
    position: int = Field(description="The global position of the event it recorded")


class KeyCreated(CommandResult):
    org: str
    role: str
    key: str | None = Field(description="The API key, shown once; "
                                        "null when an idempotent repeat answers")


# --- organisations and contracts ---------------------------------------------------


class Organisation(Shape):
    id: str
    name: str
    kind: str


class Organisations(Shape):
    items: list[Organisation]


class DirectiveWindow(Shape):
    from_: str = Field(alias="from", description="ISO date")
    to: str = Field(description="ISO date")


class Directive(Shape):
    """A directive as a contract shows it (SPEC §3), with its ``status``."""

    id: str
    issuer: str | None
    subject: str
    value: Any = Field(description="Any JSON value; null is no particular value")
    summary: str
    basis: str
    citation: str | None
    hours_per_week: float
    window: DirectiveWindow | None = Field(
        description="The effective window: the contract period when the directive named none"
    )
    due: str | None
    people_affected: int
    vulnerability: float
    target_groups: list[str]
    locations: list[str]
    indicator: str | None
    tags: list[str]
    task_type: str | None = None
    status: Literal["active", "withdrawn", "overridden"]


class ContractSummary(Shape):
    """A contract's terms (SPEC §3, as drafted or changed since), id, status and version."""

    id: str
    code: str
    title: str
    purchaser: str
    provider: str
    budget: dict[str, Any]
    period: dict[str, Any]
    service_area: list[Any] = Field(description="Place names, or {name, aliases}")
    target_groups: list[str]
    capacity: dict[str, Any]
    indicators: list[dict[str, Any]]
    stakeholders: list[dict[str, Any]]
    escalation_chain: list[str]
    resolution_sla_hours: float
    policy: dict[str, Any]
    rules: list[dict[str, Any]]
    service_types: list[str]
    admission: list[dict[str, Any]]
    joint_decision: list[str]
    status: Literal["draft", "active", "suspended", "terminated", "closed"]
    version: int
    created_at: str | None
    updated_at: str


class Contract(ContractSummary):
    directives: list[Directive] = Field(description="Every directive, whatever its status")


class Contracts(Shape):
    items: list[ContractSummary]


# --- conflicts (SPEC §4, §6, §12, §13) ----------------------------------------------


class EscalationStep(Shape):
    from_level: int
    to_level: int
    reason: str | None
    by: str | None
    version: int
    at: str


class MemberChange(Shape):
    version: int
    joined: list[str]
    left: list[str]


class Explanations(Shape):
    zh: str
    en: str


class Conflict(Shape):
    id: str
    kind: str = Field(
        description="contradiction, duplicate, over_capacity, out_of_scope, "
        "rule_violation, not_admitted or disputed"
    )
    members: list[str] = Field(description="The ids of the directives it concerns")
    status: Literal["open", "resolved", "dissolved"]
    level: int = Field(description="Its level in the contract's escalation chain")
    opened_version: int
    opened_at: str
    due: str
    details: dict[str, Any] = Field(
        description="What the kind needs: subject and values; weeks and excess_hours; rule "
        "and citation; outside; merged_into; precedents"
    )
    member_changes: list[MemberChange]
    escalations: list[EscalationStep]
    resolution: dict[str, Any] | None = Field(description="The decision, once resolved")
    resolved_version: int | None
    resolved_at: str | None
    dissolved_version: int | None
    dissolved_at: str | None


class ExplainedConflict(Conflict):
    explanation: str = Field(description="English, or Chinese when Accept-Language prefers it")
    explanations: Explanations


class ConflictView(Shape):
    """Live (``position``, and ``version`` null before the contract is projected) or
    replayed (``version``)."""

    contract_id: str
    position: int | None = Field(default=None, description="Live: the view's position")
    version: int | None = Field(description="The contract version it describes")
    conflicts: list[ExplainedConflict]


class BoardItem(ExplainedConflict):
    contract_id: str
    contract_code: str | None = None
    overdue_seconds: float = Field(description="0 when not yet due")


class ConflictBoard(Shape):
    items: list[BoardItem] = Field(description="Open conflicts, most overdue first")


# --- priorities (SPEC §5) -----------------------------------------------------------


class Component(Shape):
    value: float
    weight: float
    contribution: float = Field(description="weight × value")


class Components(Shape):
    need: Component
    urgency: Component
    indicator: Component
    legitimacy: Component
    efficiency: Component


class Schedule(Shape):
    outcome: Literal["scheduled", "partial", "deferred", "blocked", "contested", "covered"]
    hours_granted: float


class PriorityEntry(Shape):
    directive_id: str
    rank: int = Field(description="From 1")
    tier: int = Field(description="1 statute … 4 other bases; 5 shown, never scheduled")
    score: float = Field(description="100 × the sum of the contributions, unrounded")
    components: Components
    schedule: Schedule


class RankingWeights(Shape):
    need: float
    urgency: float
    indicator: float
    legitimacy: float
    efficiency: float


class PriorityView(Shape):
    """Live (``position``; the rest null before the contract is projected) or replayed or
    a what-if (``version``)."""

    contract_id: str
    position: int | None = Field(default=None, description="Live: the view's position")
    version: int | None
    profile: Literal["contract_first", "client_first"] | None
    weights: RankingWeights | None
    reference_date: str | None = Field(description="The date urgency is reckoned from")
    priorities: list[PriorityEntry]


# --- history -----------------------------------------------------------------------


class ChainAudit(BaseModel):
    verified: bool
    events: int = Field(description="How many events were checked")
    head: str = Field(description="The hash of the last event that verified")
    first_broken_version: int | None = None
    reason: str | None = None


class Actor(Shape):
    org: str
    principal: str | None = Field(description="The id of the key that made the change")


class HistoryEvent(Shape):
    version: int
    type: str
    recorded_at: str
    actor: Actor | None
    data: dict[str, Any]
    hash: str
    prev_hash: str


class History(Shape):
    events: list[HistoryEvent]
    next_after_version: int | None


# --- what changed between two versions ----------------------------------------------


class Change(Shape):
    from_: Any = Field(alias="from")
    to: Any


class ChangedDirective(Directive):
    changes: dict[str, Change] = Field(description="Each amended field, before and after")


class DirectiveChanges(Shape):
    added: list[Directive]
    changed: list[ChangedDirective]
    withdrawn: list[Directive]
    overridden: list[Directive]


class EscalatedConflict(ExplainedConflict):
    from_level: int
    to_level: int


class ConflictChanges(Shape):
    opened: list[ExplainedConflict]
    updated: list[ExplainedConflict] = Field(
        description="Open at both versions, its members changed")
    resolved: list[ExplainedConflict]
    dissolved: list[ExplainedConflict]
    escalated: list[EscalatedConflict]


class RankChange(Shape):
    directive_id: str
    from_: int | None = Field(alias="from", description="Rank at from_version; null: unranked")
    to: int | None = Field(description="Rank at to_version; null: unranked")


class TermChange(Shape):
    field: str = Field(description="status, or a changeable term")
    from_: Any = Field(alias="from")
    to: Any


class ContractDiff(Shape):
    contract_id: str
    from_version: int
    to_version: int
    directives: DirectiveChanges
    conflicts: ConflictChanges
    ranks: list[RankChange] = Field(description="Every directive whose rank differs")
    terms: list[TermChange] = Field(
        description="The contract's status and changeable terms, where they differ"
    )


# --- projections and health --------------------------------------------------------


class ProjectionStatus(Shape):
    name: str
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    status: Literal["live", "catching_up", "rebuilding"]


class Projections(Shape):
    items: list[ProjectionStatus]


class RebuildStarted(BaseModel):
    name: str
    status: Literal["rebuilding"]
    generation: str = Field(description="The generations being built, comma-joined")


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(Shape):
    status: Literal["ready"]
    checks: dict[str, dict[str, Any]] = Field(
        description="event_store, redis, projections: each with its status"
    )
