"""Rendered slot answers, kept while nothing that decides them has changed.

A steady ``GET /api/v1/slots`` would otherwise run the slot engine over every candidate and
encode every slot on each request, for the same bytes. An answer is decided by the policy,
the type and days asked (its *key*), the technicians eligible and their busy time (its
*inputs*) and the time; the time is covered by ``valid_until`` from
:func:`rules.slots.slots_valid_until`. Busy time is named by the identity of the timelines
the busy cache returned: it hands out the same objects while nothing changed and new ones
when something did. An entry holds references to what its key and inputs name by identity,
so no id in a live entry can be reused by another object.

When the inputs change (a booking, a calendar change), the new answer is computed once:
on the cache's :class:`daemon.refresh.Refresher` when it has one (the daemon's), while every
request, the one that noticed included, gets the previous answer; without one, by the
request that noticed, while the others get the previous answer. Either way no two requests
compute the same answer and queue for the same core. A cached or previous answer can at
most offer a slot booked a moment ago or hide one freed a moment ago: the booking
transaction re-checks. A request with no answer for its key, or whose answer's time no
longer holds, computes it (or waits for the one computing it).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime

from daemon.refresh import Refresher

SIZE = 256  # answers kept: the type × range combinations clients ask for, with room

# Computes an answer: its body and the instant until which its time holds.
Compute = Callable[[], tuple[bytes, datetime]]


@dataclass(frozen=True, slots=True)
class _Entry:
    body: bytes
    inputs: Hashable
    since: datetime  # the instant it was computed for: a clock set back leaves the span
    valid_until: datetime
    held: tuple[object, ...]  # what the key and inputs name by id, kept alive

    def holds_at(self, now: datetime) -> bool:
        return self.since <= now < self.valid_until


class SlotCache:
    """A bounded (least recently used) map from a key to an answer, recomputed by one
    request at a time when its inputs change."""

    def __init__(self, size: int = SIZE, *, refresher: Refresher | None = None) -> None:
        self._size = size
        self._refresher = refresher
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._computing: set[Hashable] = set()
        self._lock = threading.Lock()
        self._computed = threading.Condition(self._lock)

    def answer(
        self,
        key: Hashable,
        inputs: Hashable,
        now: datetime,
        compute: Compute,
        held: tuple[object, ...],
    ) -> bytes:
        """The answer for ``key`` at ``now`` from ``inputs``: the one stored when it still
        holds, else computed (``held`` are the objects whose ids ``key`` and ``inputs``
        contain), or the previous one while it is computed elsewhere."""
        with self._lock:
            while True:
                entry = self._entries.get(key)
                current = entry is not None and entry.holds_at(now)
                if entry is not None and current and entry.inputs == inputs:
                    self._entries.move_to_end(key)
                    return entry.body
                if key not in self._computing:
                    self._computing.add(key)
                    break
                if entry is not None and current:
                    return entry.body  # the previous answer while the new one is computed
                self._computed.wait()
        if entry is not None and current and self._refresher is not None:

            def refresh() -> None:
                self._compute(key, inputs, now, compute, held)

            if self._refresher.submit(("slots", id(self), key), refresh):
                return entry.body
        return self._compute(key, inputs, now, compute, held)

    def _compute(
        self,
        key: Hashable,
        inputs: Hashable,
        now: datetime,
        compute: Compute,
        held: tuple[object, ...],
    ) -> bytes:
        """Compute and keep the answer; called by the one caller that put ``key`` in
        ``_computing``, which it leaves however this ends."""
        try:
            body, valid_until = compute()
            with self._lock:
                self._entries[key] = _Entry(body, inputs, now, valid_until, held)
                self._entries.move_to_end(key)
                while len(self._entries) > self._size:
                    self._entries.popitem(last=False)
        finally:
            with self._lock:
                self._computing.discard(key)
                self._computed.notify_all()
        return body

    def __len__(self) -> int:
        return len(self._entries)
