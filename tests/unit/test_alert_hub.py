"""The live alert hub never blocks scoring, and tells a subscriber that fell behind to go."""

from __future__ import annotations

import asyncio

from fraudstream.runtime.embedded.alerts import AlertHub


def test_a_subscriber_that_falls_behind_is_told_to_reconnect_and_others_keep_their_alerts() -> None:
    async def scenario() -> tuple[list[object], list[object], int]:
        hub = AlertHub(queue_size=3)
        async with hub.subscribe() as slow, hub.subscribe() as fast:
            hub.publish([{"n": 1}])
            got_fast = [await fast.get()]
            hub.publish([{"n": 2}, {"n": 3}, {"n": 4}])
            got_fast += [await fast.get() for _ in range(3)]
            got_slow = []
            while not slow.empty():
                got_slow.append(slow.get_nowait())
            return got_slow, got_fast, hub.subscribers

    slow, fast, remaining = asyncio.run(scenario())
    assert slow == [None]
    assert fast == [{"n": 1}, {"n": 2}, {"n": 3}, {"n": 4}]
    assert remaining == 1
