"""Runtimes: the embedded single-process server and (later) Kafka workers, around the same core."""
