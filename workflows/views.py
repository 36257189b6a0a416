"""The Redis key layout of the read models, and the one atomic way to write them.

Every key the projections write and the API reads is named here.  A
projection keeps its views in a *generation* (``g<n>``): a rebuild fills a new
generation beside the live one and switches ``current`` when it has caught up,
so readers never see a half-built view.

Writes go through ``commit``: a Lua script that applies a batch of operations
and moves the projection's position forward only if the position is still the
one the batch was computed from.  A repeated or concurrent task therefore
changes nothing, and a worker killed mid-batch leaves the old position and
the old views (Redis runs a script atomically).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import redis

PREFIX = "tn"


def current_key(projection: str) -> str:
    return f"{PREFIX}:proj:{projection}:current"


def building_key(projection: str) -> str:
    return f"{PREFIX}:proj:{projection}:building"


def position_key(projection: str, generation: str) -> str:
    return f"{PREFIX}:proj:{projection}:{generation}:position"


def updated_key(projection: str, generation: str) -> str:
    return f"{PREFIX}:proj:{projection}:{generation}:updated_at"


def wake_key(projection: str) -> str:
    return f"{PREFIX}:wake:{projection}"


def lock_key(projection: str) -> str:
    return f"{PREFIX}:lock:{projection}"


def counter_key(projection: str) -> str:
    return f"{PREFIX}:proj:{projection}:generations"


def conflicts_key(generation: str, contract_id: str) -> str:
    return f"{PREFIX}:view:{generation}:conflicts:{contract_id}"


def priorities_key(generation: str, contract_id: str) -> str:
    return f"{PREFIX}:view:{generation}:priorities:{contract_id}"


def board_key(generation: str) -> str:
    """Sorted set of open conflicts, scored by due time (epoch seconds): most overdue first."""
    return f"{PREFIX}:view:{generation}:board"


def board_items_key(generation: str) -> str:
    return f"{PREFIX}:view:{generation}:board:items"


def contracts_key(generation: str) -> str:
    """The set of contract ids that have views in this generation."""
    return f"{PREFIX}:view:{generation}:contracts"


def generation_pattern(generation: str) -> str:
    return f"{PREFIX}:view:{generation}:*"


_COMMIT = """
local current = redis.call('GET', KEYS[1]) or '0'
if current ~= ARGV[1] then return 0 end
local ops = cjson.decode(ARGV[3])
for _, op in ipairs(ops) do
  local kind = op[1]
  if kind == 'set' then redis.call('SET', op[2], op[3])
  elseif kind == 'del' then redis.call('DEL', op[2])
  elseif kind == 'zadd' then redis.call('ZADD', op[2], op[3], op[4])
  elseif kind == 'zrem' then redis.call('ZREM', op[2], op[3])
  elseif kind == 'hset' then redis.call('HSET', op[2], op[3], op[4])
  elseif kind == 'hdel' then redis.call('HDEL', op[2], op[3])
  elseif kind == 'sadd' then redis.call('SADD', op[2], op[3])
  end
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[4])
return 1
"""

Op = Sequence[Any]


@dataclass
class ViewStore:
    """Reads and atomic writes of one projection's views in Redis."""

    client: Any  # a redis.Redis; redis-py types its replies as sync-or-async unions
    projection: str

    def __post_init__(self) -> None:
        self._commit = self.client.register_script(_COMMIT)

    # --- generations --------------------------------------------------------

    def current(self) -> str:
        """The live generation, created on first use (and again after Redis was emptied)."""
        key = current_key(self.projection)
        generation = self.client.get(key)
        if generation is None:
            fresh = self._new_generation()
            self.client.set(key, fresh, nx=True)
            generation = self.client.get(key)
        return _text(generation)

    def building(self) -> str | None:
        value = self.client.get(building_key(self.projection))
        return _text(value) if value is not None else None

    def start_rebuild(self) -> str:
        """Open a new generation to fill from the start of the log (or return the one open)."""
        existing = self.building()
        if existing:
            return existing
        fresh = self._new_generation()
        self.client.set(building_key(self.projection), fresh, nx=True)
        return self.building() or fresh

    def switch(self, generation: str) -> bool:
        """Make a caught-up rebuilt generation the live one; drop the old one."""
        with self.client.pipeline() as pipe:
            try:
                pipe.watch(building_key(self.projection), current_key(self.projection))
                if _text_or_none(pipe.get(building_key(self.projection))) != generation:
                    return False
                old = _text_or_none(pipe.get(current_key(self.projection)))
                pipe.multi()
                pipe.set(current_key(self.projection), generation)
                pipe.delete(building_key(self.projection))
                pipe.execute()
            except redis.WatchError:
                return False
        if old and old != generation:
            self.drop(old)
        return True

    def drop(self, generation: str) -> None:
        keys = list(self.client.scan_iter(generation_pattern(generation), count=1000))
        keys += [position_key(self.projection, generation),
                 updated_key(self.projection, generation)]
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start:start + 500])

    def _new_generation(self) -> str:
        return f"g{self.client.incr(counter_key(self.projection))}"

    # --- positions ------------------------------------------------------------

    def position(self, generation: str) -> int:
        return int(self.client.get(position_key(self.projection, generation)) or 0)

    def updated_at(self, generation: str) -> float | None:
        value = self.client.get(updated_key(self.projection, generation))
        return float(value) if value is not None else None

    def commit(self, generation: str, expected: int, new: int, ops: Iterable[Op]) -> bool:
        """Apply ``ops`` and move the position from ``expected`` to ``new``, or do nothing."""
        keys = [position_key(self.projection, generation), updated_key(self.projection, generation)]
        args = [str(expected), str(new), json.dumps(list(ops), ensure_ascii=False),
                repr(time.time())]
        return bool(self._commit(keys=keys, args=args))

    # --- reads ------------------------------------------------------------------

    def read_json(self, key: str) -> Any:
        raw = self.client.get(key)
        return json.loads(raw) if raw is not None else None

    def read_many(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        return [json.loads(raw) if raw is not None else None for raw in self.client.mget(keys)]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _text_or_none(value: Any) -> str | None:
    return None if value is None else _text(value)
