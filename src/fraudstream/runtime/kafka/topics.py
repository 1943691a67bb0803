"""The topics fraudstream reads and writes, created idempotently."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka.admin import AdminClient, NewTopic

from fraudstream import config as defaults
from fraudstream.runtime.kafka.clients import client_settings

__all__ = ["TOPICS", "create_topics"]

#: Output topics get fewer partitions than the input; their consumers are lighter.
TOPICS = {
    defaults.TRANSACTIONS_TOPIC: None,
    defaults.DECISIONS_TOPIC: 4,
    defaults.ALERTS_TOPIC: 2,
    defaults.DLQ_TOPIC: 1,
    defaults.LABELS_TOPIC: 2,
    defaults.CONTROL_TOPIC: 1,
}
#: Topics that keep only the latest message per key: the rule set and each list (control.py).
COMPACTED = {defaults.CONTROL_TOPIC}


def create_topics(
    brokers: str,
    partitions: int,
    replication: int = 1,
    *,
    renamed: Mapping[str, str] | None = None,
    properties: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the missing topics (the transactions topic with ``partitions``); return their names.

    ``renamed`` gives a topic another name (default name → name; '' leaves it out), as the settings
    ``kafka_*_topic`` do; ``properties`` are the user's librdkafka properties (clients.py).
    """
    admin = AdminClient(client_settings(brokers, properties))
    existing = set(admin.list_topics(timeout=10).topics)
    chosen = {(renamed or {}).get(name, name): (count, name in COMPACTED) for name, count in TOPICS.items()}
    wanted = [
        NewTopic(
            name,
            count or partitions,
            replication,
            config={"cleanup.policy": "compact"} if compacted else {},
        )
        for name, (count, compacted) in chosen.items()
        if name and name not in existing
    ]
    if not wanted:
        return []
    for future in admin.create_topics(wanted).values():
        future.result()
    return [t.topic for t in wanted]
