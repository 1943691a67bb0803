"""librdkafka's log lines reach fraudstream's log once a minute per kind, not several times a second."""

from __future__ import annotations

import logging

from structlog.testing import capture_logs

from fraudstream.runtime.kafka.clientlog import client_logger


def test_a_repeated_client_line_is_logged_once_then_held_back() -> None:
    logger = client_logger()
    # Texts no other test logs: the logger remembers what it let through for a minute.
    refused = "FAIL [rdkafka#consumer-{n}] unit-test:{n}/bootstrap: refused (after {n}ms in state CONNECT)"
    timeout = "REQTMOUT [rdkafka#producer-3] unit-test: timed out 1 in-flight request"
    with capture_logs() as logs:
        for n in range(200):  # what a worker's clients say in a few seconds with the broker down
            logger.log(logging.ERROR, refused.format(n=n))
        logger.log(logging.WARNING, timeout)
        logger.log(logging.INFO, "unit-test: an unrelated notice")
    assert [(entry["log_level"], entry["message"]) for entry in logs] == [
        ("error", refused.format(n=0)),
        ("warning", timeout),
        ("info", "unit-test: an unrelated notice"),
    ]
    assert client_logger() is logger
    # Asked for again, it adds no second throttle (pytest may attach capture handlers of its own).
    assert [type(h).__name__ for h in logger.handlers].count("_Throttled") == 1
    assert not logger.propagate
