"""One thread per sink: it reads the log after the sink's cursor, hands it over, and moves the cursor.

A failing sink is retried with exponential backoff (0.5 s doubling to 30 s) from its last durable
position; meanwhile scoring goes on and the log keeps what the sink has not taken, so nothing accepted
is lost and nothing waits on the sink. Its state (ok or failing, how far behind, the last error) is
what /readyz and /metrics show.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from fraudstream.sinks.base import LogBatch, Sink
from fraudstream.storage import Store
from fraudstream.storage.store import LOG_COLUMNS

__all__ = ["Handoff", "SinkRunner", "SinkState"]

log = structlog.get_logger("fraudstream.sinks")

#: Rows read from the log at most per hand-over.
READ_ROWS = 5_000
#: Writes a runner keeps in memory for its sink; older ones are read back from the log instead.
HANDOFFS_KEPT = 256
#: Longest pause between two looks at the log when nobody says it grew.
IDLE_WAIT_S = 0.5
#: Shortest pause between two looks while rows trickle in: under load the scorer writes a group every
#: few milliseconds, and one read per group would cost the scorer more than the sink's work.
MIN_STEP_S = 0.1
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0


def _now_ms() -> int:
    return int(time.time() * 1000)


class Handoff:
    """Rows the scorer has just stored, at log positions ``first`` to ``last``, as it built them: a
    sink takes them from memory rather than reading back what was just written (which cost the
    scorer a third of its throughput beside a Redis sink). The log stays the truth: what a runner
    did not take from memory (it was failing, or too far behind) it reads from there."""

    def __init__(
        self,
        first: int,
        last: int,
        transaction_rows: Sequence[Mapping[str, Any]],
        decision_rows: Sequence[Mapping[str, Any]],
    ) -> None:
        self.first = first
        self.last = last
        self._transactions = transaction_rows
        self._decisions = decision_rows

    def values(self, alerts_only: bool) -> list[tuple[Any, ...]]:
        """The rows as `Store.log_after` reads them (only those that raised an alert if asked)."""
        split = LOG_COLUMNS.index("decision")
        transaction_names, decision_names = LOG_COLUMNS[1:split], LOG_COLUMNS[split:]
        return [
            (self.first + i, *(t.get(n) for n in transaction_names), *(d[n] for n in decision_names))
            for i, (t, d) in enumerate(zip(self._transactions, self._decisions))
            if not alerts_only or d["is_alert"]
        ]


@dataclass
class SinkState:
    """What /readyz and /metrics tell about one sink."""

    name: str
    #: The last log position the sink has durably handed over.
    delivered_seq: int = 0
    #: The end of the log when the runner last looked.
    log_seq: int = 0
    failures: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    #: What the sink reports wrong beside the hand-over (webhook receivers failing), or None.
    problem: str | None = None

    @property
    def behind(self) -> int:
        """Transactions stored and not yet durably handed over: the outbox depth."""
        return max(0, self.log_seq - self.delivered_seq)

    @property
    def failing(self) -> bool:
        """The hand-over fails, or the sink reports a problem of its own."""
        return self.failing_since is not None or self.problem is not None

    def as_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "state": "failing" if self.failing else "ok",
            "behind": self.behind,
        }
        if self.failing_since is not None:
            state["failing_for_s"] = round(time.monotonic() - self.failing_since, 1)
            state["error"] = self.last_error
        elif self.problem is not None:
            state["error"] = self.problem
        return state


class SinkRunner:
    """Feeds one sink from the log in a daemon thread; ``notify`` after a write wakes it at once."""

    def __init__(self, sink: Sink, store: Store) -> None:
        self.sink = sink
        self.store = store
        self.state = SinkState(sink.name)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        #: Where the next read starts: past what was handed over, durable or still buffered.
        self._read_seq = 0
        #: Whether the sink took rows at the last step (a webhook sink with no webhook does not): the
        #: scorer hands rows over in memory only while some sink does.
        self.taking = False
        #: Writes handed over in memory, oldest first (``hand_off``).
        self._handoffs: deque[Handoff] = deque(maxlen=HANDOFFS_KEPT)
        #: The durable position last saved to the database, and when (monotonic seconds).
        self._saved_seq = 0
        self._saved_at = 0.0

    def start(self) -> None:
        end = self.store.last_seq()
        cursor = self.store.sink_cursor(self.sink.name)
        if cursor is None:
            # A sink seen for the first time starts with what is stored from now on: turning on a lake
            # or Redis on a server with a year of history does not replay that year into it.
            cursor = end
            self.store.save_sink_cursor(self.sink.name, cursor, _now_ms())
        self.state.delivered_seq = self._read_seq = self._saved_seq = cursor
        self.state.log_seq = end
        self._thread = threading.Thread(
            target=self._run, name=f"fraudstream-sink-{self.sink.name}", daemon=True
        )
        self._thread.start()

    def current_state(self) -> SinkState:
        """The state, with what the sink reports wrong right now through its optional ``problem()``
        method: a sink that works in threads of its own (webhooks sends from an outbox) has failures
        the hand-over never sees."""
        problem = getattr(self.sink, "problem", None)
        self.state.problem = problem() if problem is not None else None
        return self.state

    def notify(self) -> None:
        """The log grew: look now rather than at the next idle tick."""
        self._wake.set()

    def hand_off(self, written: Handoff) -> None:
        """Rows just stored, to take from memory (and look now)."""
        self._handoffs.append(written)
        self._wake.set()

    def stop_soon(self) -> None:
        """Ask the thread to hand over what the log holds, flush and end; ``stop`` waits for it."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Hand over what the log holds (within ``timeout_s``), flush the sink, and stop."""
        self.stop_soon()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("sink did not stop in time; it resumes from its cursor at the next start",
                          sink=self.sink.name, behind=self.state.behind)  # fmt: skip
        try:
            self.sink.close()
        except Exception as exc:  # closing a broken connection must not fail the shutdown
            log.warning("sink close failed", sink=self.sink.name, error=str(exc))

    def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            stopping = self._stopping.is_set()
            try:
                full = self._step(final=stopping)
            except Exception as exc:
                self._failed(exc)
                if stopping:
                    return
                self._wake.clear()
                self._stopping.wait(backoff)
                backoff = min(MAX_BACKOFF_S, backoff * 2)
                continue
            if self.state.failing_since is not None:
                log.info("sink recovered", sink=self.sink.name, failures=self.state.failures)
            self.state.failing_since = None
            self.state.last_error = None
            backoff = FIRST_BACKOFF_S
            if stopping and not full:
                self._save(force=True)
                return
            if not full:
                # Rows that arrive meanwhile are read together at the next step.
                self._stopping.wait(MIN_STEP_S)
                self._wake.wait(IDLE_WAIT_S)
                self._wake.clear()

    def _step(self, *, final: bool) -> bool:
        """One hand-over; True when more may wait at once (a full read, or rows from memory)."""
        self.taking = active = self.sink.active()
        handoffs = self._handoffs
        while handoffs and handoffs[0].first <= self._read_seq:  # already read from the log
            handoffs.popleft()
        if handoffs and handoffs[0].first == self._read_seq + 1 and active:
            values: list[tuple[Any, ...]] = []
            last = self._read_seq
            while handoffs and handoffs[0].first == last + 1 and len(values) < READ_ROWS:
                written = handoffs.popleft()
                values += written.values(self.sink.alerts_only)
                last = written.last
            self.state.log_seq = max(self.state.log_seq, last)
            self._durable(self.sink.deliver(LogBatch(LOG_COLUMNS, values, last)))
            self._read_seq = last
            self._durable(self.sink.flush(False))  # a lake's timed write, under steady traffic too
            # Go on at once only when a limit cut the hand-over short: otherwise the writes of the
            # next tenth of a second are taken together (one hand-over per group costs the scorer
            # a thread switch each, which is most of a sink's cost).
            return len(values) >= READ_ROWS
        end = self.state.log_seq = self.store.last_seq()
        if not active:
            handoffs.clear()
            self._durable(end)
            self._read_seq = end
            return False
        if handoffs:  # read the log only up to what memory holds
            end = min(end, handoffs[0].first - 1)
        full = False
        if self._read_seq < end:
            names, values = self.store.log_after(
                self._read_seq, READ_ROWS, until=end, alerts_only=self.sink.alerts_only
            )
            full = len(values) == READ_ROWS
            # A short read covered the log up to ``end`` (rows without an alert included).
            last = int(values[-1][names.index("seq")]) if full else end
            self._durable(self.sink.deliver(LogBatch(names, values, last)))
            self._read_seq = last
        # Once the log is drained, a stopping runner flushes everything the sink still buffers.
        self._durable(self.sink.flush(final and not (full or handoffs)))
        return full or (final and bool(handoffs))

    def _durable(self, seq: int | None) -> None:
        if seq is not None and seq > self.state.delivered_seq:
            self.state.delivered_seq = seq
            self._save(force=False)

    def _save(self, *, force: bool) -> None:
        """Record the durable position, at most every ``save_every_s`` unless ``force``."""
        due = time.monotonic() - self._saved_at >= self.sink.save_every_s
        if self.state.delivered_seq > self._saved_seq and (force or due):
            self.store.save_sink_cursor(self.sink.name, self.state.delivered_seq, _now_ms())
            self._saved_seq = self.state.delivered_seq
            self._saved_at = time.monotonic()

    def _failed(self, exc: Exception) -> None:
        first = self.state.failing_since is None
        self.state.failures += 1
        self.state.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if first:
            self.state.failing_since = time.monotonic()
            log.error("sink failing; it falls behind and retries with backoff", sink=self.sink.name,
                      error=self.state.last_error)  # fmt: skip
        # What the sink buffered is handed over again from the last durable position that is saved:
        # were it only known here, a crash would restart from the saved one, and the lake, which
        # names its files by their first position, must always write from the same place.
        try:
            self.sink.reset()
        finally:
            try:
                self._save(force=True)
            except Exception as error:  # the database may be what fails; the next step tries again
                log.warning("sink position not saved", sink=self.sink.name, error=str(error))
                self.state.delivered_seq = self._saved_seq
            self._read_seq = self.state.delivered_seq
