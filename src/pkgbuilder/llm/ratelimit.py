"""Tokens-per-minute budget of one worker: wait instead of sending.

Each model call reserves ``input estimate + max_tokens`` before it is sent. The reservation
counts from the moment it is made until one full window after the answer arrived (then it
is reconciled to the real usage). Counting from the *answer* rather than from the send is
deliberately conservative: whatever order the API sees requests in, the tokens of any
window-long span never exceed the budget.

A single request larger than the whole budget would otherwise wait forever; it is admitted
alone, into an empty window, and the budget is then exceeded by that one request only.

Waiters are served first come, first served, so a large request is not starved by small ones.
The limiter belongs to one worker process; N workers have N budgets.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

# Claude tokens average roughly 3.5-4 characters of English or code; counting 3 characters
# per token over-estimates, so the reservation made before a call is rarely too small.
CHARS_PER_TOKEN_ESTIMATE = 3
MESSAGE_OVERHEAD_TOKENS = 8


def estimate_tokens(text: str) -> int:
    """Conservative token estimate of a text."""
    return math.ceil(len(text) / CHARS_PER_TOKEN_ESTIMATE)


@dataclass
class Reservation:
    """Tokens held in the window; ``settled_at`` is None while the call is in flight."""

    tokens: int
    reserved_at: float
    settled_at: float | None = None
    id: int = field(default=0)


class TokenRateLimiter:
    """Sliding-window token budget, safe for concurrent coroutines and threads of one worker.

    Args:
        tokens_per_window: the budget (tokens per minute with the default window).
        window_seconds: length of the sliding window.
        clock: monotonic clock in seconds (injectable for tests).
        sleep: async sleep (injectable for tests).
        poll_seconds: how often a waiter re-checks while the blocking tokens are in flight.
    """

    def __init__(
        self,
        tokens_per_window: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        poll_seconds: float | None = None,
    ) -> None:
        if tokens_per_window < 1 or window_seconds <= 0:
            raise ValueError("the token budget and the window must be positive")
        self.budget = tokens_per_window
        self.window = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._poll = poll_seconds if poll_seconds is not None else min(1.0, window_seconds / 10)
        self._state = threading.Lock()  # guards _entries; never held across an await
        self._entries: list[Reservation] = []
        self._next_id = 0
        self._ticket_lock = threading.Lock()
        self._next_ticket = 0
        self._serving = 0
        self._done: set[int] = set()

    def _prune(self, now: float) -> None:
        self._entries = [
            e for e in self._entries if e.settled_at is None or e.settled_at + self.window > now
        ]

    def in_window(self) -> int:
        """Tokens currently counted against the budget."""
        with self._state:
            self._prune(self._clock())
            return sum(e.tokens for e in self._entries)

    def _try_admit(self, tokens: int) -> tuple[Reservation | None, float]:
        """Admit now, or return how long to wait before checking again."""
        with self._state:
            now = self._clock()
            self._prune(now)
            used = sum(e.tokens for e in self._entries)
            if used + tokens <= self.budget or not self._entries:
                self._next_id += 1
                r = Reservation(tokens=tokens, reserved_at=now, id=self._next_id)
                self._entries.append(r)
                return r, 0.0
            # Earliest moment enough settled tokens leave the window; tokens still in flight
            # have no expiry yet, so never sleep longer than one poll interval.
            need = used + tokens - self.budget
            freed = 0
            settled = sorted(
                (e for e in self._entries if e.settled_at is not None),
                key=lambda e: e.settled_at or 0.0,
            )
            for e in settled:
                freed += e.tokens
                if freed >= need:
                    expiry = (e.settled_at or 0.0) + self.window - now
                    return None, max(min(expiry, self._poll), 0.001)
            return None, self._poll

    async def acquire(self, tokens: int) -> Reservation:
        """Wait until ``tokens`` fit into the window, then reserve them (FIFO among waiters)."""
        with self._ticket_lock:
            ticket = self._next_ticket
            self._next_ticket += 1
        try:
            while True:
                with self._ticket_lock:
                    my_turn = ticket == self._serving
                if my_turn:
                    reservation, wait = self._try_admit(tokens)
                    if reservation is not None:
                        return reservation
                else:
                    wait = self._poll
                await self._sleep(wait)
        finally:
            # Served or cancelled: let the next ticket go (a cancelled waiter must not block).
            with self._ticket_lock:
                self._done.add(ticket)
                while self._serving in self._done:
                    self._done.discard(self._serving)
                    self._serving += 1

    def settle(self, reservation: Reservation, actual_tokens: int | None = None) -> None:
        """The call finished: count ``actual_tokens`` (or keep the estimate) for one more window."""
        with self._state:
            if actual_tokens is not None:
                reservation.tokens = actual_tokens
            reservation.settled_at = self._clock()
