"""Search iterator v2 sessions: where each iterator's last page ended.

pymilvus's `search_iterator` pages by score: each call sends the iterator's
token and the score of the previous page's last hit (`last_bound`). Rows
tied with that score are told apart by primary key, which the client does
not send, so the proxy remembers per token the last hit (score, pk) and how
many hits it has returned.

Invariants:
- A page resumes strictly after (last score, last pk) in (score, pk) order
  when the remembered score equals the client's `last_bound`; otherwise
  (an unknown or expired token, e.g. after a proxy restart, or another proxy)
  strictly after the score, which may skip rows tied with it but never
  repeats one.
- At most MAX_SESSIONS tokens are remembered, each for SESSION_TTL_S after
  its last use; the oldest go first.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_SESSIONS = 4096
SESSION_TTL_S = 600.0


@dataclass(slots=True)
class IteratorPosition:
    last_score: float
    last_pk: Any
    returned: int


class IteratorSessions:
    def __init__(self, max_sessions: int = MAX_SESSIONS, ttl_s: float = SESSION_TTL_S) -> None:
        self._max = max_sessions
        self._ttl = ttl_s
        self._sessions: OrderedDict[str, tuple[float, IteratorPosition]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_token() -> str:
        return uuid.uuid4().hex

    def resume(self, token: str, last_bound: float | None) -> tuple[Any, int]:
        """(pk to resume after at the bound or None, hits returned so far) for a page of `token`."""
        with self._lock:
            self._expire()
            entry = self._sessions.get(token)
        if entry is None or last_bound is None:
            return None, 0 if entry is None else entry[1].returned
        pos = entry[1]
        same = np.float32(pos.last_score) == np.float32(last_bound)
        return (pos.last_pk if same else None), pos.returned

    def advance(self, token: str, last_score: float, last_pk: Any, hits: int) -> None:
        with self._lock:
            entry = self._sessions.pop(token, None)
            returned = (entry[1].returned if entry else 0) + hits
            self._sessions[token] = (time.monotonic(), IteratorPosition(last_score, last_pk, returned))
            while len(self._sessions) > self._max:
                self._sessions.popitem(last=False)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self._ttl
        while self._sessions:
            token, (used, _) = next(iter(self._sessions.items()))
            if used >= cutoff:
                break
            del self._sessions[token]

    def __len__(self) -> int:
        return len(self._sessions)


#: the sessions of every proxy of this process (tokens are random, so they never collide)
SESSIONS = IteratorSessions()
