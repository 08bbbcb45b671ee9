"""Rendered slot answers, kept while nothing that decides them has changed.

A steady ``GET /api/v1/slots`` would otherwise run the slot engine over every candidate and
encode every slot on each request, for the same bytes. An answer is decided by the policy,
the type and days asked, the technicians eligible, their busy time and the time; the key
holds all but the time, and the time is covered by ``valid_until`` from
:func:`rules.slots.slots_valid_until`. Busy time is keyed by the identity of the timelines
the busy cache returned: it hands out the same objects while nothing changed and new ones
when something did. An entry holds references to what its key names by identity, so no id
in a live key can be reused by another object.

A cached answer can at most offer a slot booked a moment ago, as the busy cache's previous
view can: the booking transaction re-checks.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime

SIZE = 256  # answers kept: the type × range combinations clients ask for, with room


@dataclass(frozen=True, slots=True)
class _Entry:
    body: bytes
    since: datetime  # the instant it was computed for: a clock set back leaves the span
    valid_until: datetime
    held: tuple[object, ...]  # what the key names by id, kept alive


class SlotCache:
    """A bounded (least recently used) map from a key to an answer valid until an instant."""

    def __init__(self, size: int = SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, now: datetime) -> bytes | None:
        """The answer stored under ``key`` if it still holds at ``now``, else None."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if not entry.since <= now < entry.valid_until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry.body

    def put(
        self,
        key: Hashable,
        body: bytes,
        since: datetime,
        valid_until: datetime,
        held: tuple[object, ...],
    ) -> None:
        """Store ``body`` for ``[since, valid_until)``; ``held`` are the objects whose ids
        ``key`` contains."""
        with self._lock:
            self._entries[key] = _Entry(body, since, valid_until, held)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
