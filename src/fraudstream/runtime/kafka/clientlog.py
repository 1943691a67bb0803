"""librdkafka's own log lines, through fraudstream's log, each kind at most once a minute.

Left to itself, librdkafka writes every log line to stderr. With a broker down, each client of a
worker reports its failed connection several times a second: ~950 lines in 20 seconds for one
worker. A client configured with ``"logger": client_logger()`` hands them to fraudstream's
structured log instead, where a line that differs from an earlier one only in its numbers (timings,
client ids) is dropped for a minute. fraudstream reports what matters itself (unhealthy, retrying,
delivery failures).
"""

from __future__ import annotations

import logging
import re
import time

import structlog

__all__ = ["client_logger"]

log = structlog.get_logger("fraudstream.kafka")
_NUMBERS = re.compile(r"\d+")


class _Throttled(logging.Handler):
    """Hands a record to structlog unless a line like it (numbers aside) went out in the last ``every``
    seconds."""

    def __init__(self, every: float = 60.0) -> None:
        super().__init__()
        self.every = every
        self._last: dict[str, float] = {}

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        key = _NUMBERS.sub("#", text)
        now = time.monotonic()
        if now - self._last.get(key, float("-inf")) < self.every:
            return
        if len(self._last) > 1_000:  # bounded, whatever a broker may say
            self._last.clear()
        self._last[key] = now
        if record.levelno >= logging.ERROR:
            log.error("kafka client", message=text, repeats_hidden_for_s=self.every)
        elif record.levelno >= logging.WARNING:
            log.warning("kafka client", message=text, repeats_hidden_for_s=self.every)
        else:
            log.info("kafka client", message=text)


def client_logger() -> logging.Logger:
    """The logger to give a confluent-kafka client as its ``logger`` setting."""
    logger = logging.getLogger("fraudstream.librdkafka")
    if not logger.handlers:
        logger.addHandler(_Throttled())
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
