"""The topics fraudstream reads and writes, created idempotently."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

__all__ = ["TOPICS", "create_topics"]

#: Output topics get fewer partitions than the input; their consumers are lighter.
TOPICS = {
    "transactions": None,
    "decisions": 4,
    "fraud-alerts": 2,
    "transactions.dlq": 1,
    "labels": 2,
    "fraudstream-control": 1,
}
#: Topics that keep only the latest message per key: the rule set and each list (control.py).
COMPACTED = {"fraudstream-control"}


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
