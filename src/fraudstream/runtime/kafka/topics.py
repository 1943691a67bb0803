"""The topics fraudstream reads and writes, created idempotently."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from fraudstream.runtime.kafka import names

__all__ = ["TOPICS", "create_topics"]

#: Output topics get fewer partitions than the input; their consumers are lighter.
TOPICS = {
    names.TRANSACTIONS_TOPIC: None,
    names.DECISIONS_TOPIC: 4,
    names.ALERTS_TOPIC: 2,
    names.DLQ_TOPIC: 1,
    names.LABELS_TOPIC: 2,
    names.CONTROL_TOPIC: 1,
}
#: Topics that keep only the latest message per key: the rule set and each list (control.py).
COMPACTED = {names.CONTROL_TOPIC}


def create_topics(brokers: str, partitions: int, replication: int = 1) -> list[str]:
    """Create the missing topics (the transactions topic with ``partitions``); return their names."""
    admin = AdminClient({"bootstrap.servers": brokers})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(
            name,
            count or partitions,
            replication,
            config={"cleanup.policy": "compact"} if name in COMPACTED else {},
        )
        for name, count in TOPICS.items()
        if name not in existing
    ]
    if not wanted:
        return []
    for future in admin.create_topics(wanted).values():
        future.result()
    return [t.topic for t in wanted]
