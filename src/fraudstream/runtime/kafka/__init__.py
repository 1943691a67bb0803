"""The Kafka runtime: consumer-group workers with per-partition engine state, checkpointed with offsets."""
