"""The event store's transcoder: stored bytes as ``eventsourcing`` writes them, read with orjson.

Loading a contract as of some version decodes its latest snapshot (every
directive and every conflict record) and the events after it; the projection
decodes every event of the log.  ``JSONTranscoder`` decodes with the standard
library and calls a Python hook for every object; ``FastJSONTranscoder``
parses with ``orjson`` and then revives only the transcoded objects
(``{"_type_": ..., "_data_": ...}``: ids, timestamps, decimals), stopping as
soon as it has found as many as the bytes hold.

Encoding events is left to ``JSONTranscoder``, so what is stored does not change:
events written before and after this transcoder are the same bytes.  Anything
orjson refuses (``NaN``, integers beyond 64 bits) is decoded the old way.
Snapshots, a cache sealed over whatever bytes they are stored as, are encoded
with orjson (``SnapshotTranscoder``).

A large payload (a snapshot) is decoded with the cyclic garbage collector
paused (``workflows.collector.collection_paused``): its hundred thousand new lists and dicts made
Python run full collections over the whole heap in the middle of the decode,
and a decode makes no cycles, so none of that work could free anything (a load
as of a version of the 10,000-event benchmark contract: median 81 -> 69 ms CPU).
"""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import JSONTranscoder

from workflows.collector import collection_paused

TYPE_MARK = b'"_type_"'
PAUSE_ABOVE = 1 << 16
"""Bytes above which a decode pauses the garbage collector (an event is far smaller)."""


SNAPSHOT_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""Datetimes (and dataclasses) go to the registered transcodings, as ``json`` sends them."""


class FastJSONTranscoder(JSONTranscoder):
    def decode(self, data: bytes) -> Any:
        if len(data) <= PAUSE_ABOVE:
            return self._decode(data)
        with collection_paused():
            return self._decode(data)

    def _decode(self, data: bytes) -> Any:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().decode(data)
        expected = data.count(TYPE_MARK)
        if not expected:
            return value
        return _Reviver(self, expected).revive(value)


class _Reviver:
    """Replaces transcoded objects, innermost first, until ``expected`` marks were seen.

    ``expected`` counts every ``"_type_"`` in the bytes, so a string that
    merely says ``_type_`` makes the walk go on to the end, never stop early.
    """

    def __init__(self, transcoder: JSONTranscoder, expected: int) -> None:
        self.decode_obj = transcoder._decode_obj
        self.left = expected

    def revive(self, value: Any) -> Any:
        if type(value) is dict:
            for key, item in value.items():
                if self.left <= 0:
                    break
                if type(item) is dict or type(item) is list:
                    value[key] = self.revive(item)
            if "_type_" in value:
                self.left -= 1
                return self.decode_obj(value)
            return value
        if type(value) is list:
            for index, item in enumerate(value):
                if self.left <= 0:
                    break
                if type(item) is dict or type(item) is list:
                    value[index] = self.revive(item)
        return value


class SnapshotTranscoder(FastJSONTranscoder):
    """Encodes with orjson, decoding to the same values as ``json``'s bytes (the transcoded
    objects, ids, times and decimals, are transcoded alike): for snapshots only (a
    5,000-directive contract's snapshot took 61 ms with ``json`` and takes 14, paid inside
    the group commit every ``NEEDLE_SNAPSHOT_INTERVAL`` events of a contract).  orjson
    writes a ``UUID`` as a plain string, where ``json`` transcodes it: a snapshot's state
    holds none (ids are strings in the domain), and a test over random histories checks
    that every snapshot decodes as ``json``'s bytes would.  What orjson refuses is encoded
    the old way."""

    @classmethod
    def like(cls, transcoder: JSONTranscoder) -> SnapshotTranscoder:
        """One with the same transcodings as ``transcoder`` (the events')."""
        twin = cls()
        twin.types, twin.names = dict(transcoder.types), dict(transcoder.names)
        return twin

    def encode(self, obj: Any) -> bytes:
        try:
            return orjson.dumps(obj, default=self._encode_obj, option=SNAPSHOT_OPTIONS)
        except TypeError:
            return super().encode(obj)
