"""The live alert hub never blocks scoring, tells a subscriber that fell behind to go, and has a ceiling."""

from __future__ import annotations

import asyncio

import pytest

from fraudstream.runtime.embedded.alerts import AlertHub, AlertStreamFullError, Subscription


async def waiting(subscription: Subscription) -> list[object]:
    """What the subscription holds now, up to the end of its stream, without waiting for more."""
    got: list[object] = []
    while got[-1:] != [None]:
        try:
            got.append(await asyncio.wait_for(subscription.next_alert(), 0.01))
        except TimeoutError:
            break
    return got


def test_a_subscriber_that_falls_behind_is_told_to_reconnect_and_others_keep_their_alerts() -> None:
    async def scenario() -> tuple[list[object], list[object], int]:
        hub = AlertHub(queue_size=3)
        slow, fast = hub.join(), hub.join()
        hub.publish([{"n": 1}])
        got_fast = await waiting(fast)
        hub.publish([{"n": 2}, {"n": 3}, {"n": 4}])
        got_fast += await waiting(fast)
        assert slow.dropped.is_set()
        assert not fast.dropped.is_set()
        return await waiting(slow), got_fast, hub.subscribers

    slow, fast, remaining = asyncio.run(scenario())
    assert slow == [None]  # what it had waiting is forgotten, not buffered
    assert fast == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert remaining == 1


def test_a_dropped_subscriber_gets_no_more_alerts() -> None:
    async def scenario() -> list[object]:
        hub = AlertHub(queue_size=1)
        slow = hub.join()
        hub.publish([{"n": 1}, {"n": 2}])
        hub.publish([{"n": 3}])
        return await waiting(slow)

    assert asyncio.run(scenario()) == [None]


def test_subscribers_beyond_the_limit_are_refused_until_one_leaves() -> None:
    hub = AlertHub(max_subscribers=2)
    first, _ = hub.join(), hub.join()
    with pytest.raises(AlertStreamFullError, match=r"too many live alert subscribers \(2\); try later"):
        hub.join()
    assert hub.subscribers == 2
    hub.leave(first)
    hub.leave(first)  # leaving twice (dropped, then the handler's cleanup) is harmless
    hub.join()
    assert hub.subscribers == 2
