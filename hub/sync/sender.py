"""The sender: pushes the documents a projection computed (the ``accounting`` projection,
read through the ``hub.spi.documents.DocumentSource`` port the caller passes) to a target, once
each.

Why a loop of its own rather than the projection's ``send``: the runtime calls ``send`` only for
live batches, so documents a rebuild recomputed (after a mapping change) would never be sent,
and a target's outage would hold the projection's transaction open. The sender instead compares
the documents the source holds now with what the target confirmed (``sync_documents``) and
sends the difference, under a per-(tenant, target) advisory lock so one process sends at a time.

For each document: unchanged → nothing; new → ``create``; changed → ``update`` where the target
supports it, else ``void`` then ``create`` under a new idempotency key; gone (or no longer
booked) → ``void``. Each outcome is appended to the log (``accounting.document.synced`` with the
target's id, or ``accounting.document.failed`` with its message; the external id makes a repeated
outcome a duplicate) and each call is recorded in the run's call log. ``TargetUnavailable`` is
retried with exponential backoff and jitter (honouring ``retry_after``), then counted as failed
and left for the next run; ``TargetRejected`` parks the document until its content changes.
A crash between a call and its record repeats the call with the same idempotency key, which
the target answers with the document it already holds. That holds only if the repeat is the
same call, and by the next run the document may have changed: a target that replays its first
answer to a key would return the old content as if it were the new, and a re-created copy would
be made again beside the first. So each document is noted as pending (``sync_pending``, as it
is sent) before its call, or before the flush at a target that batches, and the note goes with
its outcome; a run that finds one first makes that call again, exactly (the same document, from
the same recorded state, so under the same keys: a re-created copy's key follows from the copy
it replaces, ``Document.replacing``), records what it learns, and only then sends the document
as it is now. A pending document no longer wanted is made again and then voided.

A run is one batch at a target that batches (``hub.spi.target.batched``: the Beancount file is
written once per run, not once per document). The outcomes of a batch's calls are held back
until the target's ``flush`` returned (retried like a call), and then appended to the log
together, so the log never records as synced a document the target does not hold; a crash
between the flush and the append leaves the target ahead of the log, which the next run's
repeated, idempotent calls make good. A flush that fails for good records those documents as
failed and ends the batch with an error, so the target drops what it could not write (they are
sent again next run). A target that does not batch has each outcome recorded right after its
call. The run's call log and the ``sync_documents`` rows are written with the outcomes, many
rows to a statement (``SyncLog.call_all``, ``SyncLog.remember_all``), not a round trip each.

Each document's send is a span continuing the trace of the request that brought the document's
latest event (its ``meta.traceparent``), each target call a client span inside it; each call and
outcome is also counted in ``hub.telemetry``'s metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.trace import SpanKind
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from hub import logs, telemetry
from hub.domain.documents import Document
from hub.domain.events import NewEvent
from hub.errors import ConfigError, LedgerhubError, TargetRejected, TargetUnavailable
from hub.spi.documents import DocumentSource
from hub.spi.target import BatchingTarget, Receipt, Target, batched
from hub.store import EventStore
from hub.store.projections import ProjectionStore
from hub.store.runs import RunLog, RunTally
from hub.store.sync import Call, Held, RunCounts, SyncLog

log = logging.getLogger(__name__)

OUTCOMES_PER_APPEND = 1000
"""Outcome events appended to the log in one batch (one transaction) after a flush."""


@dataclass(frozen=True)
class Backoff:
    """How a call to a target is retried: attempts, and the exponential wait's bounds (s)."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0


class _Waiter:
    """Exponential backoff with full jitter, at least the ``Retry-After`` the target gave."""

    def __init__(self, backoff: Backoff) -> None:
        self._jitter = wait_random_exponential(multiplier=backoff.initial, max=backoff.maximum)

    def __call__(self, state: RetryCallState) -> float:
        delay = self._jitter(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TargetUnavailable) and error.retry_after is not None:
            return max(delay, error.retry_after)
        return delay


class TargetHealth(Protocol):
    """Where the sender reports what it learns of a target's health (``hub.runtime.health``'s
    ``HealthMonitor``): both calls never raise."""

    async def target_fault(self, tenant: str, target: str, detail: str) -> None:
        """A refused token, or a call still failing once its retries were spent."""
        ...

    async def target_sent(self, tenant: str, target: str) -> None:
        """A run sent to the target and no document failed."""
        ...

    async def check_target(self, tenant: str, target: Target) -> None:
        """Run ``target``'s health check if it is due (on the sender's own instance, so its
        token refreshes never race the sender's)."""
        ...


class Sender:
    """Sends one tenant's documents, as ``source`` computes them, to one target per ``run``;
    faults at the target (a refused token, 5xx once retries are spent) and sends that work
    again are reported to ``health`` when given."""

    def __init__(
        self,
        events: EventStore,
        source: DocumentSource,
        backoff: Backoff | None = None,
        health: TargetHealth | None = None,
    ) -> None:
        self.events = events
        self.source = source
        self.health = health
        self.projections = ProjectionStore.over(events)
        self.log = SyncLog(self.projections)
        self.backoff = backoff or Backoff()
        self._failing: dict[tuple[str, str], str] = {}
        """(tenant, target) → the error its last scheduled run failed with (not written again)."""

    async def run(self, tenant: str, target: Target, *, scheduled: bool = False) -> int | None:
        """One sync run; its id in ``sync_runs``, or None when another process is sending for
        this pair.

        It is also a row of the runs log (``hub.store.runs``: kind ``sync``, connection
        ``sync:TARGET``, ``records`` = documents the target now holds as sent, ``api_calls`` =
        calls made to the target, ``errors`` = those that failed, retried or not). A run a
        person started (``scheduled`` False) is written when it starts and always finished (as
        failed when another process holds the pair); a ``scheduled`` one is written when it
        ends, and only if it called the target or failed (a failure with the same error as this
        sender's previous scheduled run of the pair, and no call made, is not written again:
        an outage is not a row every interval). What it logs carries ``tenant`` and
        ``connection`` (``hub.logs``).
        """
        connection = f"sync:{target.name}"
        with logs.bound(tenant=tenant, connection=connection):
            return await self._run(tenant, target, connection, scheduled=scheduled)

    async def _run(
        self, tenant: str, target: Target, connection: str, *, scheduled: bool
    ) -> int | None:
        runs = RunLog.over(self.events)
        started = datetime.now(UTC)
        row = None if scheduled else await runs.start("sync", tenant, connection)
        tally = _Tally()
        error: str | None = None
        try:
            async with self.log.exclusive(tenant, target.name) as mine:
                if not mine:  # a scheduled run: nothing done, no row; a person's: failed
                    if row is not None:
                        error = "another process is sending for this tenant and target now"
                    return None
                run_id = await self.log.start_run(tenant, target.name)
                counts = RunCounts()
                try:
                    await _Run(self, run_id, tenant, target, counts, tally).go()
                except BaseException as exc:
                    error = str(exc) or type(exc).__name__
                    await self.log.finish_run(run_id, counts, error=error)
                    raise
                finally:
                    tally.records = counts.sent
                await self.log.finish_run(run_id, counts)
                if self.health is not None and counts.failed == 0 and tally.api_calls:
                    await self.health.target_sent(tenant, target.name)
                return run_id
        except BaseException as exc:
            error = error or str(exc) or type(exc).__name__
            if self.health is not None and isinstance(exc, ConfigError | TargetUnavailable):
                await self.health.target_fault(tenant, target.name, error)
            raise
        finally:
            ending = RunTally(
                status="failed" if error is not None else "succeeded",
                records=tally.records,
                errors=tally.errors,
                api_calls=tally.api_calls,
                error=error,
            )
            try:
                pair = (tenant, target.name)
                again = error is not None and self._failing.get(pair) == error
                if row is not None:
                    await runs.finish(row, ending)
                elif (error is not None and not again) or tally.api_calls:
                    await runs.record("sync", tenant, connection, started, ending)
                if scheduled and error is not None:
                    self._failing[pair] = error
                elif scheduled:
                    self._failing.pop(pair, None)
            except LedgerhubError as exc:
                if error is None:
                    raise
                # the run's own error is the one to report
                log.warning("sync %s → %s: not in the runs log: %s", tenant, target.name, exc)


@dataclass
class _Tally:
    """A sync run's counts for the runs log: documents sent, calls made, calls that failed."""

    records: int = 0
    api_calls: int = 0
    errors: int = 0


class _Unwritten(Exception):
    """The target could not make a batch's calls durable (they were recorded as failed)."""


@dataclass
class _Run:
    sender: Sender
    run_id: int
    tenant: str
    target: Target
    counts: RunCounts
    tally: _Tally
    each: bool = True
    """Whether the target makes each call durable itself (else it batches until a flush)."""
    confirmed: list[tuple[Held, str, Document | None]] = field(default_factory=list)
    """Calls that succeeded and await the target's flush: what it holds now, the operation,
    the document sent (None for a void)."""
    calls: list[Call] = field(default_factory=list)
    """Calls made and not yet in the run's call log (written with the outcomes)."""
    faulted: bool = False
    """Whether this run reported a fault to the sender's ``health`` already."""

    async def go(self) -> None:
        async with self.sender.projections.pool.acquire() as conn:
            source = self.sender.source
            wanted = await source.documents(conn, self.tenant, self.target.name)
            last = await source.last_positions(conn, self.tenant, self.target.name)
        held = await self.sender.log.held(self.tenant, self.target.name)
        pending = await self.sender.log.pending(self.tenant, self.target.name)
        parents = await self.sender.events.meta_values(
            sorted(set(last.values())), telemetry.TRACEPARENT
        )
        # each outcome is recorded after its call, or, at a target that batches, after the
        # run's one flush
        self.each = not isinstance(self.target, BatchingTarget)
        with contextlib.suppress(_Unwritten):  # leaving the batch so drops what was not written
            await self._send(wanted, held, pending, last, parents)

    async def _send(
        self,
        wanted: list[Document],
        held: dict[str, Held],
        pending: dict[str, Document],
        last: dict[str, int],
        parents: dict[int, str],
    ) -> None:
        each = self.each
        async with batched(self.target) as flush:
            keys = {d.key for d in wanted}
            for key in sorted(pending.keys() - keys):  # sent, never recorded, and now gone
                settled, was = await self._repeat(pending[key], held.get(key), flush)
                if settled and was is not None:
                    held[key] = was  # voided with the others below
            for document in wanted:
                previous = held.get(document.key)
                earlier = pending.get(document.key)
                if earlier is not None:
                    settled, previous = await self._repeat(earlier, previous, flush)
                    if not settled:
                        continue
                unchanged = previous is not None and previous.content_hash == document.content_hash
                if unchanged and previous is not None and previous.status in ("synced", "parked"):
                    continue
                # the send continues the trace of the request that brought its latest event
                parent = parents.get(last.get(document.key, 0))
                with telemetry.tracer.start_as_current_span(
                    f"sync {self.target.name} {document.kind}",
                    context=telemetry.context_from_meta(
                        {telemetry.TRACEPARENT: parent} if parent else {}
                    ),
                    attributes={
                        "ledgerhub.tenant": self.tenant,
                        "ledgerhub.doc_key": document.key,
                    },
                ):
                    await self._one(document, previous)
                if each:
                    await self._record(flush)
            for key, was in sorted(held.items()):
                if key not in keys and was.status == "synced" and was.target_id is not None:
                    await self._gone(was)
                    if each:
                        await self._record(flush)
            await self._record(flush)

    async def _record(self, flush: Callable[[], Awaitable[None]]) -> None:
        """Flush the target (retried like a call), then log the outcomes of the calls it made
        durable, in batches. If it cannot be flushed, those documents failed this run: recorded
        so, then ``_Unwritten`` ends the batch. The calls made so far go to the run's call log
        in the same go."""
        calls, self.calls = self.calls, []
        await self.sender.log.call_all(calls)
        if not self.confirmed:
            return
        done, self.confirmed = self.confirmed, []
        if not self.each:  # the batch's calls become durable at the flush: pending from now
            sent = [d for _, _, d in done if d is not None]
            await self.sender.log.pend(self.tenant, self.target.name, sent)
        try:
            async for attempt in self._retrying():
                with attempt:
                    await flush()
        except TargetUnavailable as exc:
            log.warning("sync: %d document(s) to %s not written: %s", len(done),
                        self.target.name, exc)  # fmt: skip
            for _ in done:
                self._count("failed")
            await self._append(
                [self._failure(h.doc_key, h.content_hash, str(exc), parked=False)
                 for h, _, _ in done]
            )  # fmt: skip
            raise _Unwritten from exc
        await self._append([self._success(held, operation) for held, operation, _ in done])
        await self.sender.log.remember_all(self.tenant, self.target.name, [h for h, _, _ in done])
        for _ in done:
            self._count("sent")

    async def _repeat(
        self, earlier: Document, previous: Held | None, flush: Callable[[], Awaitable[None]]
    ) -> tuple[bool, Held | None]:
        """Make again the call an earlier run made for ``earlier`` and never recorded: the same
        document from the same recorded state ``previous``, so under the same keys, which the
        target answers with what the first call made (or, if it never arrived, makes now).
        Whether that settled it, and what the target then holds for the document (recorded
        like any outcome)."""
        with telemetry.tracer.start_as_current_span(
            f"sync {self.target.name} {earlier.kind} (repeated)",
            attributes={"ledgerhub.tenant": self.tenant, "ledgerhub.doc_key": earlier.key},
        ):
            try:
                receipt, operation = await self._push(earlier, previous)
            except TargetRejected:  # so was the first (an applied call's key gives its reply)
                await self.sender.log.unpend(self.tenant, self.target.name, earlier.key)
                return True, previous
            except TargetUnavailable as exc:
                await self._unavailable(earlier, exc)
                return False, previous
        now = self._held(earlier, receipt)
        self.confirmed.append((now, operation, earlier))
        if self.each:
            await self._record(flush)
        return True, now

    def _held(self, document: Document, receipt: Receipt) -> Held:
        """What the target holds for ``document`` after a call answered with ``receipt``."""
        key = receipt.idempotency_key or document.idempotency_key
        return Held(document.key, key, document.content_hash, receipt.target_id, "synced", None)

    async def _one(self, document: Document, held: Held | None) -> None:
        if self.each:  # the call is durable when it returns: pending from before it is made
            await self.sender.log.pend(self.tenant, self.target.name, [document])
        try:
            receipt, operation = await self._push(document, held)
        except TargetRejected as exc:
            self._count("parked")
            await self._failed(document, str(exc), parked=True)
            return
        except TargetUnavailable as exc:
            await self._unavailable(document, exc)
            return
        self.confirmed.append((self._held(document, receipt), operation, document))

    async def _unavailable(self, document: Document, exc: TargetUnavailable) -> None:
        """``document`` failed this run: counted, logged, and reported to ``health``."""
        self._count("failed")
        await self._failed(document, str(exc), parked=False)
        if self.sender.health is not None and not self.faulted:  # once a run is enough
            self.faulted = True
            await self.sender.health.target_fault(self.tenant, self.target.name, str(exc))

    def _count(self, outcome: telemetry.DocumentOutcome) -> None:
        """Count a document's outcome in this run and in the process's metrics."""
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        telemetry.sync.document(self.target.name, outcome)

    def _success(self, held: Held, operation: str) -> NewEvent:
        """The ``accounting.document.synced`` event of one outcome (a repeat is a duplicate in
        the log)."""
        return self._event(
            "accounting.document.synced",
            f"{held.doc_key}#{held.content_hash[:16]}#{operation}",
            {
                "target": self.target.name,
                "doc_key": held.doc_key,
                "target_id": held.target_id,
                "idempotency_key": held.idempotency_key,
                "content_hash": held.content_hash,
                "operation": operation,
            },
        )

    def _failure(self, doc_key: str, content_hash: str, message: str, *, parked: bool) -> NewEvent:
        """The ``accounting.document.failed`` event of one document in this run."""
        return self._event(
            "accounting.document.failed",
            f"{doc_key}#{content_hash[:16]}#failed#{self.run_id}",
            {
                "target": self.target.name,
                "doc_key": doc_key,
                "message": message,
                "parked": parked,
                "content_hash": content_hash,
            },
        )

    async def _push(self, document: Document, held: Held | None) -> tuple[Receipt, str]:
        previous = held.target_id if held is not None and held.status == "synced" else None
        if previous is None:
            if held is not None and held.status == "voided" and held.target_id is not None:
                # back after it was voided: a copy of its own, or the target would answer the
                # first key with the voided one
                return await self._replacing(document, held.target_id), "recreate"
            return await self._call(document.key, "create", self.target.create, document), "create"
        if self.target.supports_update:
            update = self.target.update
            return await self._call(document.key, "update", update, previous, document), "update"
        await self._call(document.key, "void", self.target.void, previous)
        return await self._replacing(document, previous), "recreate"

    async def _replacing(self, document: Document, voided: str) -> Receipt:
        """Create ``document`` as the copy that replaces ``voided``, under a key of its own."""
        fresh = document.replacing(voided)
        receipt = await self._call(document.key, "create", self.target.create, fresh)
        return dataclasses.replace(receipt, idempotency_key=fresh.idempotency_key)

    async def _gone(self, was: Held) -> None:
        assert was.target_id is not None
        try:
            await self._call(was.doc_key, "void", self.target.void, was.target_id)
        except (TargetRejected, TargetUnavailable) as exc:
            self._count("failed")
            log.warning("sync: voiding %s at %s failed: %s", was.doc_key, self.target.name, exc)
            return
        self.confirmed.append((dataclasses.replace(was, status="voided"), "void", None))

    async def _failed(self, document: Document, message: str, *, parked: bool) -> None:
        await self._append(
            [self._failure(document.key, document.content_hash, message, parked=parked)]
        )
        if parked:
            await self.sender.log.remember(
                self.tenant,
                self.target.name,
                Held(
                    document.key,
                    document.idempotency_key,
                    document.content_hash,
                    None,
                    "parked",
                    message,
                ),
            )

    def _retrying(self) -> AsyncRetrying:
        """Retries of a ``TargetUnavailable`` (counted), with the sender's backoff."""
        backoff = self.sender.backoff

        def retried(_state: RetryCallState) -> None:
            self.counts.retries += 1
            telemetry.sync.retry(self.target.name)

        return AsyncRetrying(
            stop=stop_after_attempt(backoff.attempts),
            wait=_Waiter(backoff),
            retry=retry_if_exception_type(TargetUnavailable),
            before_sleep=retried,
            reraise=True,
        )

    async def _call(
        self, doc_key: str, operation: str, call: Callable[..., Awaitable[Receipt]], *args: Any
    ) -> Receipt:
        async for attempt in self._retrying():
            with attempt:
                return await self._timed(doc_key, operation, call, *args)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    async def _timed(
        self, doc_key: str, operation: str, call: Callable[..., Awaitable[Receipt]], *args: Any
    ) -> Receipt:
        started = time.perf_counter()
        status, request_id = "ok", f"local-{uuid.uuid4().hex[:16]}"
        span = telemetry.tracer.start_span(
            f"{self.target.name} {operation}",
            kind=SpanKind.CLIENT,
            attributes={"ledgerhub.doc_key": doc_key},
        )
        try:
            with trace.use_span(span, end_on_exit=False):
                receipt = await call(*args)
            request_id = receipt.request_id
            return receipt
        except TargetUnavailable:
            status = "unavailable"
            raise
        except TargetRejected:
            status = "rejected"
            raise
        except Exception:
            status = "error"
            raise
        finally:
            span.set_attribute("ledgerhub.outcome", status)
            span.set_attribute("ledgerhub.request_id", request_id)
            span.end()
            self.tally.api_calls += 1
            if status != "ok":
                self.tally.errors += 1
            seconds = time.perf_counter() - started
            telemetry.sync.call(self.target.name, operation, status, seconds)
            self.calls.append(
                Call(self.run_id, doc_key, operation, request_id, status, int(seconds * 1000))
            )

    def _event(self, event_type: str, external_id: str, data: dict[str, Any]) -> NewEvent:
        return NewEvent(
            tenant=self.tenant,
            source=f"sync:{self.target.name}",
            external_id=external_id,
            type=event_type,
            occurred_at=datetime.now(UTC),
            data=data,
        )

    async def _append(self, events: list[NewEvent]) -> None:
        """Append outcome events, ``OUTCOMES_PER_APPEND`` to a batch."""
        for start in range(0, len(events), OUTCOMES_PER_APPEND):
            await self.sender.events.append(events[start : start + OUTCOMES_PER_APPEND])
