"""Several servers behind one client: least-in-flight dispatch, failover before the answer, backoff.

:class:`~langchain_localllm._core.http.client.HttpClient` serves one endpoint or a fleet of them
through a :class:`Fleet` (one server is a fleet of one). This module holds the dispatch
decisions and no I/O: the client's sync and async loops ask :meth:`Fleet.acquire` /
:meth:`Fleet.aacquire` for an endpoint and tell a :class:`Walk` what happened.

Each request goes to the usable endpoint with the fewest requests in flight relative to its
weight (ties between busy endpoints: the faster one; between idle ones: the one sent fewest
so far, so sequential requests rotate). An endpoint is skipped while it is at its
``max_concurrency``; when every endpoint is, the request waits for a free slot.

Failover follows one rule: a request moves to another endpoint only when no byte of its
answer was received — the connection was refused or dropped before the answer began, or the
server answered 5xx (503: still loading its model). Such an endpoint is marked ``down`` (or
``loading``) with an exponential backoff; when the backoff ends the next request probes it
(one request at a time) and success brings it back ``up``. A stream cut after its answer
began raises as with one server (with the partial text): it is never silently generated
again elsewhere. When every endpoint failed for a request, one
:class:`~langchain_localllm.errors.FleetUnavailableError` names each of them and why. With
a single endpoint there is nowhere else to go: it takes every request, whatever its state,
and its own error is raised.

The dispatch state is shared by the sync and the async path (a lock; waiting uses a
condition for threads and futures for event loops).

``FleetClient`` is another name of ``HttpClient``, kept for the modules that import it from
here (resolved on first use: this module imports nothing of the client).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langchain_localllm._core.http.errors import ServerKind
from langchain_localllm.errors import FleetUnavailableError, InvalidParameterError, ServerError

if TYPE_CHECKING:
    from langchain_localllm._core.http.client import HttpClient as FleetClient

__all__ = ["Endpoint", "EndpointStatus", "Fleet", "FleetClient", "Walk", "is_unanswered", "last_url"]

State = Literal["up", "down", "loading"]

BACKOFF_START = 0.5
"""Seconds an endpoint stays out after its first failure; doubled per further failure."""
BACKOFF_MAX = 30.0
"""Longest backoff, in seconds."""
LATENCY_SMOOTHING = 0.2
"""Weight of the newest sample in the moving average of time to the first byte."""

_last_url: contextvars.ContextVar[str | None] = contextvars.ContextVar("fleet_last_url", default=None)


def last_url() -> str | None:
    """The base URL of the endpoint that this context's last request went to."""
    return _last_url.get()


def __getattr__(name: str) -> Any:
    # ``FleetClient`` is the name older code imports the one client under (see the module doc).
    if name == "FleetClient":
        from langchain_localllm._core.http.client import HttpClient

        return HttpClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def is_unanswered(error: BaseException) -> bool:
    """Whether ``error`` means the server produced no byte of an answer (so it may go elsewhere).

    True for a refused or dropped connection before the answer (the client tags those
    ``unanswered``) and for a 5xx status; False for everything else, in particular for a stream
    interrupted after it began and for 4xx answers (the same request fails everywhere).
    """
    if getattr(error, "unanswered", False):
        return True
    status = getattr(error, "status_code", None)
    return isinstance(error, ServerError) and isinstance(status, int) and status >= 500


@dataclass
class EndpointStatus:
    """What :meth:`Fleet.status` reports for one endpoint."""

    url: str
    state: str
    """``up``, ``down``, ``loading`` or ``probing`` (backoff over, next request tests it)."""
    in_flight: int
    requests: int
    """Requests answered by this endpoint (any status but 5xx)."""
    errors: int
    """Requests that failed here before the answer began (connection refused, 5xx)."""
    latency_ms: float | None
    """Moving average of the time until an answer began: its first streamed event, or the
    whole answer when it is not streamed."""
    weight: float
    max_concurrency: int | None
    last_error: str | None
    retry_in_s: float | None
    """Seconds until a ``down``/``loading`` endpoint is probed again."""


@dataclass(eq=False)
class Endpoint:
    """One server of a fleet and its dispatch state (guarded by the fleet's lock)."""

    url: str
    """The endpoint's base URL."""
    weight: float = 1.0
    max_concurrency: int | None = None
    state: State = "up"
    in_flight: int = 0
    dispatched: int = 0
    requests: int = 0
    errors: int = 0
    failures_in_row: int = 0
    retry_at: float = 0.0
    probing: bool = False
    latency: float | None = None
    last_error: str | None = None

    def usable(self, now: float) -> bool:
        """Up with a free slot, or out of backoff and not already being probed."""
        if self.max_concurrency is not None and self.in_flight >= self.max_concurrency:
            return False
        if self.state == "up":
            return True
        return now >= self.retry_at and not self.probing

    def load(self) -> tuple[float, float, float]:
        """Sort key: in-flight requests relative to the weight; among busy endpoints with as many,
        the one answering faster (it frees up first); among idle ones, the one sent fewest so far
        (sequential requests rotate)."""
        busy_latency = (self.latency or 0.0) if self.in_flight else 0.0
        return (self.in_flight / self.weight, busy_latency, self.dispatched / self.weight)


class Fleet:
    """The endpoints of a fleet and the dispatch decisions; no I/O of its own."""

    def __init__(
        self,
        urls: Sequence[str],
        server: ServerKind,
        *,
        weights: Sequence[float] | None = None,
        max_concurrency: Sequence[int | None] | None = None,
    ) -> None:
        self.server = server
        count = len(urls)
        weights = list(weights) if weights is not None else [1.0] * count
        limits = list(max_concurrency) if max_concurrency is not None else [None] * count
        if len(weights) != count or len(limits) != count:
            msg = (
                f"{count} endpoints but {len(weights)} weights and {len(limits)} concurrency limits; "
                "give one value per URL in base_url."
            )
            raise InvalidParameterError(msg, parameter="endpoint_weights")
        self.endpoints = [
            Endpoint(url, weight=float(w), max_concurrency=m)
            for url, w, m in zip(urls, weights, limits, strict=True)
        ]
        self._lock = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    # --- choosing ------------------------------------------------------------------------

    def _pick(self, tried: Sequence[Endpoint]) -> tuple[Endpoint | None, bool]:
        """(endpoint to use now, whether an untried endpoint is only busy). Call under the lock."""
        now = time.monotonic()
        fresh = [e for e in self.endpoints if e not in tried]
        if len(self.endpoints) == 1:  # nowhere else to go: the one server takes every request
            if not fresh:
                return None, False
            chosen = fresh[0]
            if chosen.max_concurrency is not None and chosen.in_flight >= chosen.max_concurrency:
                return None, True
        elif usable := [e for e in fresh if e.usable(now)]:
            chosen = min(usable, key=Endpoint.load)
        else:
            # Every untried endpoint is busy or in backoff. Busy ones free up: wait for them.
            # If the rest are all in backoff, try the one due soonest rather than failing unasked.
            busy = [e for e in fresh if e.max_concurrency is not None and e.in_flight >= e.max_concurrency]
            if busy:
                return None, True
            waiting = [e for e in fresh if e.state != "up" and not e.probing]
            if not waiting:
                return None, bool(fresh)
            chosen = min(waiting, key=lambda e: e.retry_at)
        if chosen.state != "up":
            chosen.probing = True
        chosen.in_flight += 1
        chosen.dispatched += 1
        _last_url.set(chosen.url)
        return chosen, False

    def acquire(self, tried: Sequence[Endpoint]) -> Endpoint:
        """The endpoint for the next attempt (blocks while all candidates are busy)."""
        with self._lock:
            while True:
                chosen, busy = self._pick(tried)
                if chosen is not None:
                    return chosen
                if not busy:
                    raise self.unavailable(tried)
                self._lock.wait()

    async def aacquire(self, tried: Sequence[Endpoint]) -> Endpoint:
        """Async :meth:`acquire` (waits on a future instead of blocking the loop)."""
        while True:
            with self._lock:
                chosen, busy = self._pick(tried)
                if chosen is not None:
                    return chosen
                if not busy:
                    raise self.unavailable(tried)
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._waiters.append((asyncio.get_running_loop(), future))
            await future

    # --- outcomes ------------------------------------------------------------------------

    def answered(self, endpoint: Endpoint, seconds: float) -> None:
        """The endpoint began an answer after ``seconds``: it is up."""
        with self._lock:
            endpoint.state = "up"
            endpoint.probing = False
            endpoint.failures_in_row = 0
            endpoint.requests += 1
            old = endpoint.latency
            endpoint.latency = seconds if old is None else old + LATENCY_SMOOTHING * (seconds - old)

    def failed(self, endpoint: Endpoint, error: BaseException) -> None:
        """The endpoint failed before answering: out for a growing backoff."""
        loading = getattr(error, "status_code", None) == 503
        with self._lock:
            endpoint.errors += 1
            endpoint.failures_in_row += 1
            endpoint.probing = False
            endpoint.state = "loading" if loading else "down"
            endpoint.last_error = str(error).split(". ")[0][:200]
            backoff = min(BACKOFF_START * 2 ** (endpoint.failures_in_row - 1), BACKOFF_MAX)
            endpoint.retry_at = time.monotonic() + backoff

    def release(self, endpoint: Endpoint) -> None:
        """The attempt on ``endpoint`` is over (whatever its outcome): free its slot."""
        with self._lock:
            endpoint.in_flight -= 1
            if endpoint.state != "up":
                endpoint.probing = False
            self._lock.notify_all()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            loop.call_soon_threadsafe(_resolve, future)

    # --- reporting -----------------------------------------------------------------------

    def unavailable(self, tried: Sequence[Endpoint]) -> FleetUnavailableError:
        """The error for a request that no endpoint could take."""
        lines = [f"{e.url} ({e.state}: {e.last_error or 'no answer'})" for e in self.endpoints]
        server = self.server
        msg = (
            f"No {server.name} endpoint of the fleet could take the request; tried {len(tried)} of "
            f"{len(self.endpoints)}: " + "; ".join(lines) + f". If they are stopped, {server.start_hint}."
        )
        return FleetUnavailableError(msg, url=", ".join(e.url for e in self.endpoints), endpoints=lines)

    def status(self) -> list[EndpointStatus]:
        """Each endpoint's state, in-flight count, errors and latency, in ``base_url`` order."""
        now = time.monotonic()
        with self._lock:
            return [
                EndpointStatus(
                    url=e.url,
                    state=e.state if e.state == "up" or now < e.retry_at else "probing",
                    in_flight=e.in_flight,
                    requests=e.requests,
                    errors=e.errors,
                    latency_ms=None if e.latency is None else round(e.latency * 1000, 1),
                    weight=e.weight,
                    max_concurrency=e.max_concurrency,
                    last_error=e.last_error,
                    retry_in_s=round(e.retry_at - now, 2) if e.state != "up" and now < e.retry_at else None,
                )
                for e in self.endpoints
            ]

    def capacity(self, per_endpoint: int) -> int:
        """Requests the fleet serves at once: each endpoint's limit (else ``per_endpoint``), summed."""
        return sum(e.max_concurrency or per_endpoint for e in self.endpoints)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Walk:
    """One request's way through the fleet: the endpoint tried now, those tried before, and
    what an outcome means (shared by the sync and async paths, which only do the I/O)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.tried: list[Endpoint] = []
        self.endpoint: Endpoint | None = None
        self.started = 0.0
        self.answering = False

    def start(self, endpoint: Endpoint) -> None:
        self.endpoint, self.started, self.answering = endpoint, time.monotonic(), False

    @property
    def url(self) -> str:
        """The base URL of the endpoint tried now."""
        assert self.endpoint is not None
        return self.endpoint.url

    def began(self) -> None:
        """The answer began (first event, whole answer, or an answered error)."""
        if not self.answering and self.endpoint is not None:
            self.answering = True
            self.fleet.answered(self.endpoint, time.monotonic() - self.started)

    def moves_on(self, error: Exception) -> bool:
        """Whether the request goes to another endpoint after ``error``; else it is raised."""
        if self.answering or self.endpoint is None:
            return False
        if not is_unanswered(error):
            self.began()
            return False
        self.fleet.failed(self.endpoint, error)
        self.tried.append(self.endpoint)
        return len(self.fleet.endpoints) > 1  # one server's own error is the one to raise

    def release(self) -> None:
        """The attempt is over: free the endpoint's slot."""
        if self.endpoint is not None:
            self.fleet.release(self.endpoint)
