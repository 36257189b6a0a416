"""The conflict fold: which episode each change continues (SPEC §4), touching only what moved.

After an event adds, changes or removes directives, only some localities can
have changed (``domain.conflicts`` registers each kind's locality): the
subjects of the changed directives (before and after), the directives
themselves, and the weeks whose load moved, widened to the ends of the
over-capacity runs touching them.  The tracker re-detects there and
*reconciles* what it finds with the open conflicts of those localities:

- a detection continues the open conflict it overlaps (shares a member with,
  for subject kinds; has the same directive and rule; overlaps the weeks of,
  for ``over_capacity``), keeping its id, level, due and escalations, with the
  change of members recorded;
- when it overlaps several (a merge), it continues the one opened first, with
  the highest level and the earliest due; the others dissolve with
  ``details.merged_into``;
- when one open conflict overlaps several detections (a split), it continues
  in the one holding its earliest-issued remaining member; the other parts
  open as new conflicts at its level, with its due;
- an open conflict that overlaps no detection dissolves;
- a detection that overlaps no open conflict opens a new one, unless a
  resolved conflict of the same kind and locality already holds all its
  members (that matter was decided); a new conflict lists in
  ``details.precedents`` the decisions on its members and, for subject kinds,
  on its subject.

Whether a directive bears load depends on the open conflicts it is in
(``domain.weekly_load``), so after the subject and directive kinds the
tracker moves the load of every directive whose conflicts changed, then
re-detects ``over_capacity`` where the load moved.  A decision that closes a
conflict (``conflict_changed``) moves load the same way.

Everything the tracker keeps is derived from the contract's directives and
conflict view: built when first needed, never stored.  It also logs which
conflict records it wrote (``written_since``), so that a reader keeping
something per conflict (the projection's ranking and its conflict hash) reads
only those again.

Long (~625 lines) because the indices (by subject, by member, by
run of weeks, resolved conflicts) and the reconciliation that keeps them are
one piece of state changed in one fold; split across modules, every part would
reach into the others' dictionaries.  Load lives apart (``domain.weekly_load``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableMapping
from datetime import datetime
from functools import lru_cache
from typing import Any

from domain.conflict_records import (
    DISSOLVED,
    OPEN,
    RESOLVED,
    continued,
    dissolved,
    episode_id,
    opened,
    precedent,
)
from domain.conflicts import DIRECTIVE, KINDS, SUBJECT, WEEKS, Detection, kinds_at
from domain.contract_state import canonical_json
from domain.scope import ContractScope, Outside
from domain.weekly_load import FREE, NONE, SHARED, LoadEntry, WeeklyLoad
from domain.windows import (
    Span,
    covered_weeks,
    period_span,
    to_micro,
    week_dates,
    week_number,
    window_weeks,
)

Directive = Mapping[str, Any]
Record = dict[str, Any]
View = MutableMapping[str, Record]
Cursor = tuple[object, int]
"""Where a reader of ``ConflictTracker.written_since`` left off (opaque to it)."""

# The kinds found in each locality, in registration order (``domain.conflicts`` registers
# them all when it is imported).
SUBJECT_KINDS, DIRECTIVE_KINDS, WEEKS_KINDS = (
    tuple(kinds_at(locality)) for locality in (SUBJECT, DIRECTIVE, WEEKS))

# How a member of an open conflict of each kind bears its hours (``_mode``).
MODE_OF_KIND = {kind.name: NONE if kind.blocks else SHARED if kind.one_side else FREE
                for kind in KINDS.values()}

# Fields no detector reads: changing only these changes no conflict.
UNDETECTED_FIELDS = frozenset({
    "due", "people_affected", "vulnerability", "indicator", "citation",
    "issued_version", "issued_at", "amended_version",
})


class ConflictTracker:
    """Derived indices over a contract's active directives and its conflicts."""

    def __init__(
        self,
        contract_id: str,
        terms: Mapping[str, Any],
        directives: Iterable[Directive],
        view: Mapping[str, Record],
    ) -> None:
        self.contract_id = contract_id
        self.terms = terms
        self.scope = ContractScope(terms)
        self.period = period_span(terms)
        self.sla_hours = float(terms["resolution_sla_hours"])
        self.active: dict[str, Directive] = {}
        self.spans: dict[str, Span] = {}
        self.by_subject: dict[str, set[str]] = {}
        self._canonical: dict[str, str] = {}
        self.load = WeeklyLoad(terms, self.period)
        self.open_on_subject: dict[str, set[str]] = {}
        self.open_runs: dict[str, tuple[int, int]] = {}
        self.open_of_member: dict[str, dict[str, str]] = {}
        """Directive id → {open conflict id: kind}."""
        self.resolved_of_member: dict[str, set[str]] = {}
        self.resolved_on_subject: dict[str, set[str]] = {}
        self._opening = (0, 0)
        self._cited: dict[str, dict[str, Any]] = {}
        """Resolved conflict id → how later conflicts cite it (``precedent``)."""
        self._log_token = object()
        self._serial = 0
        self._written: dict[str, int] = {}
        """Conflict id → the serial of its record's last write, in the order of those writes
        (``written_since``)."""
        for record in view.values():
            if record["status"] != DISSOLVED:  # a dissolved conflict is in no index
                self._index(record, +1)
        asking_hours = self._add_all(directives)
        # Only directives asking hours bear load (``_load_of`` answers NONE for the others).
        # They bear it in id order: the first look at a run's members (``WeeklyLoad.involved``,
        # which keeps them up to date from then on) sorts their ids, and a sort of ids
        # already in order costs one pass, not n log n comparisons.
        asking_hours.sort(key=_directive_id)
        self.load.bear_all(asking_hours)

    def copy(self, terms: Mapping[str, Any]) -> ConflictTracker:
        """An independent twin for a copy of the contract: far cheaper than a rebuild."""
        twin = object.__new__(ConflictTracker)
        twin.__dict__.update(self.__dict__)
        twin.terms = terms
        twin.active = dict(self.active)
        twin.spans = dict(self.spans)
        twin.by_subject = {subject: set(keys) for subject, keys in self.by_subject.items()}
        twin._canonical = dict(self._canonical)
        twin.load = self.load.copy()
        twin.open_on_subject = {key: set(ids) for key, ids in self.open_on_subject.items()}
        twin.open_runs = dict(self.open_runs)
        twin.open_of_member = {key: dict(ids) for key, ids in self.open_of_member.items()}
        twin.resolved_of_member = {k: set(ids) for k, ids in self.resolved_of_member.items()}
        twin.resolved_on_subject = {k: set(ids) for k, ids in self.resolved_on_subject.items()}
        twin._cited = dict(self._cited)
        twin._log_token, twin._written = object(), {}  # a cursor of ours is not the twin's
        return twin

    # --- what was written since a reader last looked ---------------------------------

    def written_since(self, cursor: Cursor | None) -> tuple[list[str] | None, Cursor]:
        """The ids of the conflict records written into the view since ``cursor`` (a
        cursor this tracker answered), newest first, and a cursor for the next call.
        ``None`` instead of the ids when the cursor cannot tell: none was given, or it
        was another tracker's (a contract loaded again, or a copy, builds its own).

        A reader that keeps something per conflict (a count, an encoding) and its cursor
        reads only these records again, not every conflict of the contract."""
        now = (self._log_token, self._serial)
        if cursor is None or cursor[0] is not self._log_token:
            return None, now
        since, ids = cursor[1], []
        for conflict_id, serial in reversed(self._written.items()):
            if serial <= since:
                break
            ids.append(conflict_id)
        return ids, now

    def _wrote(self, conflict_id: str) -> None:
        self._serial += 1
        self._written.pop(conflict_id, None)  # (to the end: the log stays in serial order)
        self._written[conflict_id] = self._serial

    # --- the facts the locality functions ask for (``DirectiveFacts``) --------------

    def span(self, directive: Directive) -> Span:
        """The days of an active directive's window, worked out when first asked for (most
        directives are never asked: only those on a changed subject or bearing load)."""
        key = directive["id"]
        span = self.spans.get(key)
        if span is None:
            window = directive.get("window")
            span = self.spans[key] = _span(window["from"], window["to"]) if window \
                else self.period
        return span

    def canonical(self, directive: Directive) -> str:
        key = directive["id"]
        text = self._canonical.get(key)
        if text is None:
            text = self._canonical[key] = canonical_json(directive.get("value"))
        return text

    def outside_of(self, directive: Directive) -> Outside | None:
        return self.scope.outside(directive)

    def rules_broken_by(self, directive: Directive) -> list[Mapping[str, Any]]:
        return self.scope.broken_rules(directive)

    def unadmitted_by(self, directive: Directive) -> list[str] | None:
        return self.scope.unadmitted(directive)

    # --- the fold -------------------------------------------------------------------

    def directives_changed(
        self,
        view: View,
        changes: Iterable[tuple[Directive | None, Directive | None]],
        *,
        version: int,
        at: datetime,
    ) -> None:
        """Fold ``(before, after)`` directive changes recorded at ``version`` into ``view``.

        ``before`` is ``None`` for a new directive; a directive that is not
        ``active`` counts as absent.  Records are replaced, never mutated.
        """
        subjects: set[str] = set()
        touched: set[str] = set()
        for before, after in changes:
            old = before if before and before.get("status", "active") == "active" else None
            new = after if after and after.get("status", "active") == "active" else None
            if old is None and new is None:
                continue
            if old is not None and new is not None and _same_to_detectors(old, new):
                self.active[new["id"]] = new
                continue
            for directive in (old, new):
                if directive is not None:
                    subjects.add(directive["subject"])
                    touched.add(directive["id"])
            if old is not None:
                self._remove(old)
            if new is not None:
                self._add(new)
        if not touched:
            return
        moved: set[str] = set(touched)
        # each subject's active directives in id order, read (not changed) by every kind
        groups = [(subject, [self.active[key] for key in sorted(self.by_subject.get(subject, ()))])
                  for subject in sorted(subjects)]
        for kind in SUBJECT_KINDS:
            for subject, group in groups:
                found = kind.find(self, subject, group) if len(group) > 1 else []
                open_ids = self.open_on_subject.get(subject)
                records = [view[c] for c in open_ids if view[c]["kind"] == kind.name] \
                    if open_ids else []
                if found or records:
                    moved |= self._reconcile(view, kind.name, found, records, version, at)
        moved |= self._redetect_directives(view, touched, version, at)
        self._loads_moved(view, moved, version, at)

    def _redetect_directives(
        self, view: View, keys: Iterable[str], version: int, at: datetime,
    ) -> set[str]:
        """Re-detect the directive kinds of these directives; answers what moved."""
        moved: set[str] = set()
        keys = sorted(keys)
        for kind in DIRECTIVE_KINDS:
            for key in keys:
                directive = self.active.get(key)
                found = kind.find(self, directive) if directive is not None else []
                open_kinds = self.open_of_member.get(key)
                records = [view[c] for c, k in open_kinds.items() if k == kind.name] \
                    if open_kinds else []
                if not found and not records:
                    continue  # the common case: nothing found, nothing open
                for group_key in sorted({d.key for d in found} | {_rule_key(r) for r in records}):
                    moved |= self._reconcile(
                        view, kind.name, [d for d in found if d.key == group_key],
                        [r for r in records if _rule_key(r) == group_key], version, at)
        return moved

    def terms_changed(
        self, view: View, terms: Mapping[str, Any], *, version: int, at: datetime,
    ) -> None:
        """New terms (an admission list): re-detect the directive kinds of every active
        directive against them, and move the load of those whose conflicts changed."""
        self.terms = terms
        self.scope = ContractScope(terms)
        moved = self._redetect_directives(view, list(self.active), version, at)
        self._loads_moved(view, moved, version, at)

    def conflict_changed(self, view: View, record: Record, *, version: int, at: datetime) -> None:
        """Store a record a decision or an escalation changed, and move the load it frees."""
        previous = view.get(record["id"])
        if previous is not None:
            self._index(previous, -1)
        view[record["id"]] = record
        self._wrote(record["id"])
        self._index(record, +1)
        if previous is not None and previous["status"] != record["status"]:
            self._loads_moved(view, set(record["members"]), version, at)

    # --- reconciling detections with open episodes -------------------------------------

    def _reconcile(
        self,
        view: View,
        kind: str,
        found: list[Detection],
        records: list[Record],
        version: int,
        at: datetime,
    ) -> set[str]:
        """Continue, merge, split, open and dissolve episodes of one kind in one locality.

        Answers the directives whose open conflicts changed.
        """
        moved: set[str] = set()
        if not found and not records:
            return moved
        records = sorted(records, key=lambda r: (r["opened_version"], r["id"]))
        overlapping = {r["id"]: [i for i, d in enumerate(found) if self._overlaps(d, r)]
                       for r in records}
        home: dict[str, int] = {}
        for record in records:
            candidates = overlapping[record["id"]]
            if not candidates:
                continue
            if len(candidates) == 1:
                home[record["id"]] = candidates[0]
                continue
            present = {m for i in candidates for m in found[i].members}
            remaining = [m for m in record["members"] if m in present]
            if remaining:
                first = min(remaining, key=self._issue_order)
                home[record["id"]] = next(i for i in candidates if first in found[i].members)
            else:
                home[record["id"]] = candidates[0]
        for index, detection in enumerate(found):
            homed = [r for r in records if home.get(r["id"]) == index]
            members = list(detection.members)
            if homed:
                survivor, *merged = homed
                for other in merged:
                    self._replace(view, dissolved(other, version=version, at=at,
                                                  merged_into=survivor["id"]), moved)
                details = self._with_precedents(detection, kind)
                after = continued(
                    survivor, members, details, version=version,
                    level=max(r["level"] for r in homed),
                    due=min((r["due"] for r in homed), key=datetime.fromisoformat),
                )
                if after != survivor:
                    self._replace(view, after, moved)
                continue
            parents = [r for r in records if index in overlapping[r["id"]]]
            if not parents and self._settled(view, detection):
                continue
            number, ordinal = self._opening
            ordinal = ordinal + 1 if number == version else 0
            self._opening = (version, ordinal)
            record = opened(
                episode_id(self.contract_id, kind, version, ordinal), kind, members,
                self._with_precedents(detection, kind), version=version, at=at,
                sla_hours=self.sla_hours,
                level=max((r["level"] for r in parents), default=0),
                due=min((r["due"] for r in parents), key=datetime.fromisoformat)
                if parents else None,
            )
            if parents:
                record["details"] = {**record["details"], "split_from": parents[0]["id"]}
            self._replace(view, record, moved)
        for record in records:
            if record["id"] not in home:
                self._replace(view, dissolved(record, version=version, at=at), moved)
        return moved

    def _overlaps(self, detection: Detection, record: Record) -> bool:
        locality = KINDS[detection.kind].locality
        if locality == WEEKS:
            first, last = self.open_runs[record["id"]]
            return detection.key[0] <= last and first <= detection.key[1]
        if locality == DIRECTIVE:
            return _rule_key(record) == detection.key
        return not set(record["members"]).isdisjoint(detection.members)

    def _settled(self, view: View, detection: Detection) -> bool:
        """Whether a resolved conflict of the same kind and locality holds all the members."""
        members = set(detection.members)
        for conflict in self.resolved_of_member.get(detection.members[0], ()):
            record = view[conflict]
            if record["kind"] != detection.kind or not members <= set(record["members"]):
                continue
            locality = KINDS[detection.kind].locality
            if locality == SUBJECT and record["details"].get("subject") != detection.key[0]:
                continue
            if locality == DIRECTIVE and _rule_key(record) != detection.key:
                continue
            return True
        return False

    def _with_precedents(self, detection: Detection, kind: str) -> dict[str, Any]:
        cited: set[str] = set()
        resolved = self.resolved_of_member
        if resolved:  # one lookup per member, no empty set made for each
            for member in detection.members:
                ids = resolved.get(member)
                if ids:
                    cited |= ids
        if KINDS[kind].locality == SUBJECT:
            cited |= self.resolved_on_subject.get(detection.key[0], set())
        if not cited:
            return detection.details
        return {**detection.details, "precedents": sorted(
            (self._cited[c] for c in cited), key=lambda p: (p["version"], p["conflict_id"]))}

    def _replace(self, view: View, record: Record, moved: set[str]) -> None:
        previous = view.get(record["id"])
        view[record["id"]] = record
        self._wrote(record["id"])
        if (previous is not None and previous["status"] == record["status"] == OPEN
                and previous["details"].get("subject") == record["details"].get("subject")):
            # an open conflict whose members (or run of weeks) changed: re-index only what did
            weeks = record["details"].get("weeks")
            if weeks != previous["details"].get("weeks"):
                self.open_runs[record["id"]] = (_week(weeks[0]), _week(weeks[-1]))
            if previous["members"] == record["members"]:
                return
            joined, left = _member_change(previous, record)
            kind, conflict = record["kind"], record["id"]
            for member in left:
                self.open_of_member.get(member, {}).pop(conflict, None)
            for member in joined:
                self.open_of_member.setdefault(member, {})[conflict] = kind
            moved.update(joined, left)
            return
        if previous is not None:
            self._index(previous, -1)
            moved.update(previous["members"])
        self._index(record, +1)
        moved.update(record["members"])

    def _issue_order(self, key: str) -> tuple[int, str]:
        directive = self.active.get(key)
        return (directive.get("issued_version") or 0) if directive else 0, key

    # --- load and over capacity --------------------------------------------------------

    def _loads_moved(self, view: View, moved: set[str], version: int, at: datetime) -> None:
        stretches = [weeks for key in sorted(moved) if (weeks := self._move_load(key))]
        if not stretches:
            return
        for kind in WEEKS_KINDS:
            for first, last in self.load.widened(stretches):
                found = kind.find(self.load, first, last)
                records = [view[c] for c, (start, end) in self.open_runs.items()
                           if start <= last and first <= end and view[c]["kind"] == kind.name]
                self._reconcile(view, kind.name, found, records, version, at)

    def _move_load(self, key: str) -> range | None:
        """Bear the directive's load as its open conflicts now say; the weeks that moved."""
        if key not in self.active:
            entry = self.load.bearing.get(key)
            return self.load.bear(entry[0], range(0), 0, NONE) if entry else None
        return self.load.bear(*self._load_of(key))

    def _load_of(self, key: str) -> tuple[Directive, range, int, int]:
        """An active directive's weeks, micro-hours, and how its open conflicts count it."""
        directive = self.active[key]
        hours = to_micro(directive.get("hours_per_week") or 0)
        if hours <= 0:
            return directive, range(0), 0, NONE
        return directive, _covered(self.span(directive), self.period), hours, self._mode(key)

    def _mode(self, key: str) -> int:
        """How an active directive asking hours bears them, as its open conflicts say: none in
        a blocking one, shared in a one-side one, else its own hours (``FREE``)."""
        kinds = self.open_of_member.get(key)
        if not kinds:
            return FREE
        modes = {MODE_OF_KIND[kind] for kind in kinds.values()}
        return NONE if NONE in modes else SHARED if SHARED in modes else FREE

    # --- directives ----------------------------------------------------------------------

    def _add(self, directive: Directive) -> None:
        self._add_all((directive,))

    def _add_all(self, directives: Iterable[Directive]) -> list[LoadEntry]:
        """Index the active ones of these directives; answers how those asking hours bear
        load (``_load_of``), in the order given.

        One loop with its lookups held in locals: a tracker's build adds every
        active directive of the contract (thousands, on each load as of a version).
        Spans are left to ``span``, when asked for.
        """
        active, by_subject, period = self.active, self.by_subject, self.period
        open_of_member, mode_of = self.open_of_member, self._mode
        asking_hours = []
        for directive in directives:
            if directive.get("status", "active") != "active":
                continue
            key = directive["id"]
            active[key] = directive
            group = by_subject.get(directive["subject"])
            if group is None:
                by_subject[directive["subject"]] = {key}
            else:
                group.add(key)
            asked = directive.get("hours_per_week")
            if asked and (hours := to_micro(asked)) > 0:
                window = directive.get("window")
                weeks = window_weeks(window["from"], window["to"], period) if window \
                    else _covered(period, period)
                asking_hours.append((directive, weeks, hours,
                                     mode_of(key) if key in open_of_member else FREE))
        return asking_hours

    def _remove(self, directive: Directive) -> None:
        key = directive["id"]
        self.spans.pop(key, None)
        del self.active[key]
        self._canonical.pop(key, None)
        group = self.by_subject[directive["subject"]]
        group.discard(key)
        if not group:
            del self.by_subject[directive["subject"]]

    # --- conflicts by locality -------------------------------------------------------------

    def _index(self, record: Record, sign: int) -> None:
        conflict, kind = record["id"], record["kind"]
        locality = KINDS[kind].locality if kind in KINDS else None
        if record["status"] == OPEN:
            for member in record["members"]:
                if sign > 0:
                    self.open_of_member.setdefault(member, {})[conflict] = kind
                else:
                    self.open_of_member.get(member, {}).pop(conflict, None)
            if locality == SUBJECT:
                _toggle(self.open_on_subject, record["details"]["subject"], conflict, sign)
            elif locality == WEEKS:
                if sign > 0:
                    weeks = record["details"]["weeks"]
                    self.open_runs[conflict] = (_week(weeks[0]), _week(weeks[-1]))
                else:
                    self.open_runs.pop(conflict, None)
        elif record["status"] == RESOLVED:
            for member in record["members"]:
                _toggle(self.resolved_of_member, member, conflict, sign)
            if locality == SUBJECT:
                _toggle(self.resolved_on_subject, record["details"]["subject"], conflict, sign)
            if sign > 0:
                self._cited[conflict] = precedent(record)


def _toggle(index: dict[str, set[str]], key: str, conflict: str, sign: int) -> None:
    if sign > 0:
        index.setdefault(key, set()).add(conflict)
        return
    ids = index.get(key)
    if ids is not None:
        ids.discard(conflict)
        if not ids:
            del index[key]


def _member_change(previous: Record, record: Record) -> tuple[list[str], list[str]]:
    """The members that joined and that left between two versions of an open conflict.

    When ``record`` is ``continued(previous, ...)`` it holds ``previous``'s member
    changes (the same objects) and one more, which says exactly this: it is read
    rather than worked out again from two sets of a long run's thousands of members.
    Otherwise the member lists are compared.
    """
    before = previous.get("member_changes", [])
    after = record.get("member_changes", [])
    if len(after) == len(before) + 1 and (not before or after[-2] is before[-1]):
        return after[-1]["joined"], after[-1]["left"]
    old = set(previous["members"])
    changed = old.symmetric_difference(record["members"])
    return [m for m in changed if m not in old], [m for m in changed if m in old]


def _rule_key(record: Mapping[str, Any]) -> tuple[str, str]:
    details = record["details"]
    return record["members"][0], details.get("rule") or details.get("dispute") or ""


@lru_cache(maxsize=1 << 14)
def _span(first: str, last: str) -> Span:
    """The span of a window's ends (remembered: directives repeat a few thousand windows,
    and every load of a contract as of a version indexes all of them again)."""
    return Span.of({"from": first, "to": last})


@lru_cache(maxsize=1 << 14)
def _covered(span: Span, period: Span) -> range:
    """``covered_weeks``, remembered like ``_span``: one range per distinct window."""
    return covered_weeks(span, period)


def _directive_id(entry: LoadEntry) -> str:
    return str(entry[0]["id"])


def _week(label: str) -> int:
    return week_number(week_dates(label)[0])


def _same_to_detectors(old: Directive, new: Directive) -> bool:
    """Whether a change leaves every field a detector reads as it was."""
    keys = (old.keys() | new.keys()) - UNDETECTED_FIELDS - {"value"}
    return (all(old.get(key) == new.get(key) for key in keys)
            and canonical_json(old.get("value")) == canonical_json(new.get("value")))
