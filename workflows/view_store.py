"""The Redis key layout of the read models, the one atomic way to write them, and reads.

Every key the projections write and the API reads is named here.  A
projection keeps its views in a *generation* (``g<n>``): a rebuild fills a new
generation beside the live one and switches ``current`` when it has caught up,
so readers never see a half-built view.  A generation exists while it is a
member of the projection's ``generations`` set; dropping one removes it from
the set first, so a straggling writer can never bring a dropped one back.

Writes go through ``ViewStore.commit``: a Lua script that applies a batch of
operations and moves the generation's position forward only if the position
is still the one the batch was computed from and the generation still exists.
A repeated or concurrent task therefore changes nothing, and a worker killed
mid-batch leaves the old position and the old views (Redis runs a script
atomically).

Readers (the API) use ``read_contract_view``, ``read_board`` and
``read_position``: each answers the live generation's position together with
what it read, in one atomic step, so a switch between two reads can never pair
a view with the wrong position or a dropped generation.

The contracts projection is partitioned by contract id (``partition_of``); each
partition is a projection here, its keys tagged ``{contracts.p<i>}`` for Redis
Cluster.  A contract's view is read from its partition; the board is merged
from all of them.

Long because the Redis keys, Lua scripts and reads of the views are one schema and
change together.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import secrets
import time
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import redis

PREFIX = "tn"
CONTRACTS = "contracts"
"""The projection there is: per-contract conflicts and priorities, and the board, split into
partitions by contract id (``contracts.p0`` … ``contracts.p<N-1>``), each one a projection
of its own here: its own generations, position, lease and wake flag."""
DEFAULT_PARTITIONS = 4
_partitions = DEFAULT_PARTITIONS


def configure_partitions(count: int) -> None:
    """Set this process's partition count (``NEEDLE_PROJECTION_PARTITIONS``, at bootstrap)."""
    global _partitions
    _partitions = max(1, int(count))


def partition_count(partitions: int | None = None) -> int:
    return _partitions if partitions is None else partitions


def partition_name(index: int) -> str:
    return f"{CONTRACTS}.p{index}"


def partition_names(partitions: int | None = None) -> list[str]:
    return [partition_name(i) for i in range(partition_count(partitions))]


def partition_of(contract_id: Any, partitions: int | None = None) -> int:
    """The partition a contract's views live in: CRC-32 of its canonical id, modulo N."""
    text = str(contract_id)
    with contextlib.suppress(ValueError):
        text = str(UUID(text))
    return zlib.crc32(text.encode()) % partition_count(partitions)


def contract_partition(contract_id: Any, partitions: int | None = None) -> str:
    return partition_name(partition_of(contract_id, partitions))


def _tag(projection: str) -> str:
    """A projection's keys carry its name as a Redis Cluster hash tag: one slot per partition,
    so the Lua scripts (which touch a partition's position and its views together) run there."""
    return "{" + projection + "}"


def current_key(projection: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:current"


def building_key(projection: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:building"


def position_key(projection: str, generation: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:{generation}:position"


def updated_key(projection: str, generation: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:{generation}:updated_at"


def reference_key(projection: str, generation: str) -> str:
    """The date every priority view of the generation was computed against (ISO date)."""
    return f"{PREFIX}:proj:{_tag(projection)}:{generation}:reference_date"


def texts_key(projection: str, generation: str) -> str:
    """The fingerprint of the texts the generation's explanations are written with
    (``workflows/texts_version.py``), recorded when the generation is made."""
    return f"{PREFIX}:proj:{_tag(projection)}:{generation}:texts"


def lock_key(projection: str) -> str:
    return f"{PREFIX}:lock:{_tag(projection)}"


def counter_key(projection: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:generation_counter"


def generations_key(projection: str) -> str:
    """The set of the projection's existing generations (live, building, scratch)."""
    return f"{PREFIX}:proj:{_tag(projection)}:generations"


def conflicts_key(generation: str, contract_id: str) -> str:
    """Hash of a contract's conflicts: conflict id → the explained conflict's JSON, and
    ``HEAD_FIELD`` → the document's head (contract id, position, version).  One field each,
    so a batch writes only the conflicts it changed (a hot contract's whole conflict
    document was 4.5 MB); readers join them (``conflict_document``)."""
    return f"{PREFIX}:view:{generation}:conflicts:{contract_id}"


HEAD_FIELD = "@"
"""The conflict hash's field of the document's head (no conflict id starts with ``@``)."""


def conflict_document(pairs: Sequence[Any]) -> dict[str, Any] | None:
    """A contract's conflict document from its hash's fields and values (``HGETALL`` as a
    flat list, or its items): the head, then ``conflicts`` oldest first, then by id (as
    ``domain.conflict_records.listed`` lists them); None when there is none."""
    items = pairs.items() if isinstance(pairs, Mapping) else zip(pairs[::2], pairs[1::2],
                                                                   strict=True)
    head: dict[str, Any] | None = None
    conflicts = []
    for field_name, value in items:
        if _text(field_name) == HEAD_FIELD:
            head = json.loads(value)
        else:
            conflicts.append(json.loads(value))
    conflicts.sort(key=lambda record: (record["opened_version"], record["id"]))
    return None if head is None else {**head, "conflicts": conflicts}


def priorities_key(generation: str, contract_id: str) -> str:
    return f"{PREFIX}:view:{generation}:priorities:{contract_id}"


def board_key(generation: str) -> str:
    """Sorted set of open conflicts, scored by due time (epoch seconds): most overdue first."""
    return f"{PREFIX}:view:{generation}:board"


def board_items_key(generation: str) -> str:
    """Hash of board member (``<contract_id>:<conflict_id>``) → the board item's JSON."""
    return f"{PREFIX}:view:{generation}:board:items"


def contracts_key(generation: str) -> str:
    """The set of contract ids that have views in this generation."""
    return f"{PREFIX}:view:{generation}:contracts"


def generation_pattern(generation: str) -> str:
    return f"{PREFIX}:view:{generation}:*"


# KEYS: position, updated_at, generations set.  ARGV: expected, new, now, generation, then
# the operations flattened: a kind and its arguments (set k v, del k, zadd k score m,
# zrem k m, hset k f v, hdel k f, sadd k m, and move staged k: a value set beside the
# script, renamed into place).  Flat arguments spare encoding the views twice.
_COMMIT = """
local i = 5
local n = #ARGV
local arity = {set = 2, move = 2, del = 1, zadd = 3, zrem = 2, hset = 3, hdel = 2, sadd = 2}
local function refuse()
  while i <= n do
    if ARGV[i] == 'move' then redis.call('DEL', ARGV[i+1]) end
    i = i + 1 + (arity[ARGV[i]] or 0)
  end
  return 0
end
if redis.call('SISMEMBER', KEYS[3], ARGV[4]) == 0 then return refuse() end
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return refuse() end
while i <= n do
  local kind = ARGV[i]
  if kind == 'set' then redis.call('SET', ARGV[i+1], ARGV[i+2]); i = i + 3
  elseif kind == 'move' then
    redis.call('RENAME', ARGV[i+1], ARGV[i+2]); redis.call('PERSIST', ARGV[i+2]); i = i + 3
  elseif kind == 'del' then redis.call('DEL', ARGV[i+1]); i = i + 2
  elseif kind == 'zadd' then redis.call('ZADD', ARGV[i+1], ARGV[i+2], ARGV[i+3]); i = i + 4
  elseif kind == 'zrem' then redis.call('ZREM', ARGV[i+1], ARGV[i+2]); i = i + 3
  elseif kind == 'hset' then redis.call('HSET', ARGV[i+1], ARGV[i+2], ARGV[i+3]); i = i + 4
  elseif kind == 'hdel' then redis.call('HDEL', ARGV[i+1], ARGV[i+2]); i = i + 3
  elseif kind == 'sadd' then redis.call('SADD', ARGV[i+1], ARGV[i+2]); i = i + 3
  else return redis.error_reply('unknown view operation ' .. tostring(kind))
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[3])
return 1
"""

# KEYS: current, building, generations set.  ARGV: generation, position key prefix.
# Switch only to the open rebuild, and only when it is not behind the live one:
# a reader must never see the position go backwards.
_SWITCH = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return false end
local old = redis.call('GET', KEYS[1])
if old then
  local behind = tonumber(redis.call('GET', ARGV[2] .. ARGV[1] .. ':position') or '0')
  local live = tonumber(redis.call('GET', ARGV[2] .. old .. ':position') or '0')
  if behind < live then return false end
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('DEL', KEYS[2])
return old or ''
"""

# KEYS: current.  ARGV: position key prefix, view key suffix (after the generation).
_READ_VIEW = """
local generation = redis.call('GET', KEYS[1])
if not generation then return {false, '0', false} end
local position = redis.call('GET', ARGV[1] .. generation .. ':position') or '0'
local key = 'tn:view:' .. generation .. ':' .. ARGV[2]
local view
if ARGV[3] == 'hash' and redis.call('TYPE', key).ok == 'hash' then
  view = redis.call('HGETALL', key)
else
  view = redis.call('GET', key)
end
return {generation, position, view}
"""

# KEYS: current.  ARGV: position key prefix, start, stop.
_READ_BOARD = """
local generation = redis.call('GET', KEYS[1])
if not generation then return {false, '0', {}} end
local position = redis.call('GET', ARGV[1] .. generation .. ':position') or '0'
local board = 'tn:view:' .. generation .. ':board'
local members = redis.call('ZRANGE', board, ARGV[2], ARGV[3])
local items = {}
if #members > 0 then items = redis.call('HMGET', board .. ':items', unpack(members)) end
return {generation, position, items}
"""

_READ_VIEW = _READ_VIEW.replace("'tn:view:'", f"'{PREFIX}:view:'")
_READ_BOARD = _READ_BOARD.replace("'tn:view:'", f"'{PREFIX}:view:'")

Op = Sequence[Any]

STAGED_BYTES = 32 * 1024
STAGED_MS = 120_000
"""A staged value's life if its commit never comes (the writer died in between)."""


@dataclass(frozen=True)
class LiveRead:
    """What a reader got from the live generation, with that generation's position."""

    generation: str | None
    position: int
    value: Any


def _position_prefix(projection: str) -> str:
    return f"{PREFIX}:proj:{_tag(projection)}:"


def read_contract_view(
    client: Any, kind: Literal["conflicts", "priorities"], contract_id: str,
    projection: str | None = None, partitions: int | None = None,
) -> LiveRead:
    """A contract's live conflict or priority document (``value`` None if not projected yet),
    with the position of the contract's partition."""
    projection = projection or contract_partition(contract_id, partitions)
    generation, position, raw = client.eval(
        _READ_VIEW, 1, current_key(projection), _position_prefix(projection),
        f"{kind}:{contract_id}", "hash" if kind == "conflicts" else "string",
    )
    # a conflict hash; else a document (a conflict document written whole, before
    # conflicts were hashed, included)
    value = conflict_document(raw) if isinstance(raw, list) else json.loads(raw) if raw else None
    return LiveRead(_text_or_none(generation), int(position), value)


def read_board(
    client: Any, start: int = 0, stop: int = -1, partitions: int | None = None,
) -> LiveRead:
    """Open conflicts across contracts, earliest due first (ranks ``start``..``stop``),
    merged from every partition's board.  Each partition is read atomically with its
    position; the position answered is the lowest of them (every event at or below it
    is on the board).  ``generation`` joins the partitions' generations."""
    fetch = -1 if stop < 0 else stop
    pipe = client.pipeline(transaction=False)
    for projection in partition_names(partitions):
        pipe.eval(_READ_BOARD, 1, current_key(projection), _position_prefix(projection),
                  0, fetch)
    generations, positions, merged = [], [], []
    for generation, position, items in pipe.execute():
        generations.append(_text_or_none(generation) or "")
        positions.append(int(position))
        merged.append([json.loads(item) for item in items if item])
    ordered = list(heapq.merge(*merged, key=_due_order))
    ordered = ordered[start:] if stop < 0 else ordered[start:stop + 1]
    joined = ",".join(generations) if any(generations) else None
    return LiveRead(joined, min(positions, default=0), ordered)


def _due_order(item: dict[str, Any]) -> tuple[float, str]:
    """The board's order (its sorted sets score by due epoch; ties by member name)."""
    due = datetime.fromisoformat(item["due"]).timestamp()
    return due, f"{item['contract_id']}:{item.get('id', '')}"


def read_position(client: Any, projection: str | None = None,
                  partitions: int | None = None) -> int:
    """The live position: every event at or below it is in the views.  With ``projection``
    (one partition) that partition's; else the lowest of every partition's."""
    names = [projection] if projection else partition_names(partitions)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.eval(_READ_VIEW, 1, current_key(name), _position_prefix(name), "")
    return min(int(position) for _, position, _ in pipe.execute())


@dataclass(frozen=True)
class PassStart:
    """What ``ViewStore.begin_pass`` found on taking a partition's lease."""

    woken: bool
    """The wake flag was set (and is now deleted)."""
    generation: str | None
    """The live generation, None when there is none yet."""
    position: int
    """Its position."""


_BEGIN_PASS = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local woken = redis.call('DEL', KEYS[2])
local generation = redis.call('GET', KEYS[3])
if not generation then return {woken} end
return {woken, generation, redis.call('GET', ARGV[3] .. generation .. ':position') or '0'}
"""


@dataclass
class ViewStore:
    """Reads and atomic writes of one projection's views in Redis."""

    client: Any  # a redis.Redis; redis-py types its replies as sync-or-async unions
    projection: str = CONTRACTS
    texts: str | None = None
    """The fingerprint of the texts this process explains conflicts with
    (``workflows/texts_version.py``), recorded on each generation it makes."""

    def __post_init__(self) -> None:
        self._commit = self.client.register_script(_COMMIT)
        self._switch = self.client.register_script(_SWITCH)
        self._begin_pass = self.client.register_script(_BEGIN_PASS)

    # --- a pass (``workflows.projections.ContractViews.run_pass``) ------------

    def begin_pass(self, lock: str, token: str, lease_ms: int, wake: str) -> PassStart | None:
        """Take the lease ``lock`` if it is free and, holding it, delete the wake flag and
        read the live generation and its position: one round trip where there were four.
        None when another consumer holds the lease (its wake flag is left alone)."""
        answer = self._begin_pass(keys=[lock, wake, current_key(self.projection)],
                                  args=[token, lease_ms, _position_prefix(self.projection)])
        if answer is None:
            return None
        if len(answer) == 1:  # no live generation yet: ``current`` makes one
            return PassStart(bool(answer[0]), None, 0)
        return PassStart(bool(answer[0]), _text(answer[1]), int(answer[2]))

    def after_pass(self, generation: str) -> tuple[str | None, str | None, str | None]:
        """The live generation, ``generation``'s reference date and the generation being
        built: what a pass looks at before it lets go, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(current_key(self.projection))
        pipe.get(reference_key(self.projection, generation))
        pipe.get(building_key(self.projection))
        current, reference, building = pipe.execute()
        return _text_or_none(current), _text_or_none(reference), _text_or_none(building)

    # --- generations --------------------------------------------------------

    def current(self) -> str:
        """The live generation, created on first use (and again after Redis was emptied)."""
        key = current_key(self.projection)
        generation = self.client.get(key)
        if generation is None:
            fresh = self.new_generation()
            if not self.client.set(key, fresh, nx=True):
                self.drop(fresh)
            generation = self.client.get(key)
        return _text(generation)

    def building(self) -> str | None:
        return _text_or_none(self.client.get(building_key(self.projection)))

    def start_rebuild(self) -> str:
        """Open a new generation to fill from the start of the log (or return the one open)."""
        existing = self.building()
        if existing and self.exists(existing):
            return existing
        fresh = self.new_generation()
        if existing:  # a rebuild whose generation was lost (Redis emptied): replace it
            self.client.set(building_key(self.projection), fresh)
        elif not self.client.set(building_key(self.projection), fresh, nx=True):
            self.drop(fresh)
        return self.building() or fresh

    def switch(self, generation: str) -> bool:
        """Make a caught-up rebuilt generation the live one, atomically; drop the old one."""
        old = self._switch(
            keys=[current_key(self.projection), building_key(self.projection),
                  generations_key(self.projection)],
            args=[generation, _position_prefix(self.projection)],
        )
        if old is None:
            return False
        old_generation = _text(old)
        if old_generation and old_generation != generation:
            self.drop(old_generation)
        return True

    def exists(self, generation: str) -> bool:
        return bool(self.client.sismember(generations_key(self.projection), generation))

    def new_generation(self) -> str:
        # the generation's name carries the partition's hash tag, so its view keys
        # (``tn:view:{contracts.p0}g3:…``) share the slot of the partition's position
        generation = f"{_tag(self.projection)}g{self.client.incr(counter_key(self.projection))}"
        if self.texts is not None:
            self.client.set(texts_key(self.projection, generation), self.texts)
        self.client.sadd(generations_key(self.projection), generation)
        return generation

    def drop(self, generation: str) -> None:
        """Forget a generation: first its membership (no commit lands after), then its keys."""
        self.client.srem(generations_key(self.projection), generation)
        keys = [position_key(self.projection, generation),
                updated_key(self.projection, generation),
                reference_key(self.projection, generation),
                texts_key(self.projection, generation)]
        keys += list(self.client.scan_iter(generation_pattern(generation), count=1000))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start:start + 500])

    # --- positions ------------------------------------------------------------

    def position(self, generation: str) -> int:
        return int(self.client.get(position_key(self.projection, generation)) or 0)

    def updated_at(self, generation: str) -> float | None:
        value = self.client.get(updated_key(self.projection, generation))
        return float(value) if value is not None else None

    def texts_of(self, generation: str) -> str | None:
        """The fingerprint of the texts the generation was made with (``None``: made by a
        release before fingerprints)."""
        return _text_or_none(self.client.get(texts_key(self.projection, generation)))

    def reference_date(self, generation: str) -> str | None:
        return _text_or_none(self.client.get(reference_key(self.projection, generation)))

    def commit(self, generation: str, expected: int, new: int, ops: Iterable[Op]) -> bool:
        """Apply ``ops`` and move the position from ``expected`` to ``new``, or do nothing.

        A value of ``STAGED_BYTES`` or more is not passed through the script, which copies
        every argument it is given (a hot contract's 4 MB conflict view cost Redis ~12 ms
        so): it is set beside it, in the same round trip, under a key that expires, and the
        script renames it into place (or deletes it, when it refuses the commit)."""
        keys = [position_key(self.projection, generation),
                updated_key(self.projection, generation),
                generations_key(self.projection)]
        args: list[Any] = [str(expected), str(new), repr(time.time()), generation]
        staging = None
        for op in ops:
            if op[0] == "set" and len(op[2]) >= STAGED_BYTES:
                if staging is None:
                    staging = self.client.pipeline(transaction=False)
                    prefix = f"{PREFIX}:staged:{_tag(self.projection)}:{secrets.token_hex(8)}:"
                stage = f"{prefix}{len(args)}"
                staging.set(stage, op[2], px=STAGED_MS)
                args.extend(("move", stage, op[1]))
            else:
                args.extend(op)
        if staging is None:
            return bool(self._commit(keys=keys, args=args))
        self._commit(keys=keys, args=args, client=staging)
        return bool(staging.execute()[-1])

    # --- reads ------------------------------------------------------------------

    def read_json(self, key: str) -> Any:
        raw = self.client.get(key)
        return json.loads(raw) if raw is not None else None

    def read_conflicts(self, generation: str, contract_id: str) -> dict[str, Any] | None:
        """A contract's conflict document in a generation (``conflict_document``; or the
        whole document a projector wrote before conflicts were hashed, until rewritten)."""
        key = conflicts_key(generation, contract_id)
        try:
            return conflict_document(self.client.hgetall(key))
        except redis.ResponseError:  # WRONGTYPE: the document of an earlier release
            document: dict[str, Any] | None = self.read_json(key)
            return document

    def conflicts_head(self, generation: str, contract_id: str) -> dict[str, Any] | None:
        """The head of that document: contract id, position, version."""
        key = conflicts_key(generation, contract_id)
        try:
            raw = self.client.hget(key, HEAD_FIELD)
        except redis.ResponseError:  # WRONGTYPE: the document of an earlier release
            raw = self.client.get(key)
        return json.loads(raw) if raw is not None else None

    def dump(self, generation: str) -> dict[str, Any]:
        """Every view key of a generation, its generation name left out: for comparisons."""
        prefix = f"{PREFIX}:view:{generation}:"
        dumped: dict[str, Any] = {}
        for raw_key in self.client.scan_iter(generation_pattern(generation), count=1000):
            key = _text(raw_key)
            kind = _text(self.client.type(key))
            value: Any
            if kind == "string":
                value = json.loads(self.client.get(key))
            elif kind == "set":
                value = sorted(_text(member) for member in self.client.smembers(key))
            elif kind == "zset":
                value = [(_text(m), s) for m, s in self.client.zrange(key, 0, -1, withscores=True)]
            elif kind == "hash":
                value = {_text(f): json.loads(v) for f, v in self.client.hgetall(key).items()}
            else:
                value = kind
            dumped[key.removeprefix(prefix)] = value
        return dumped


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _text(value)
