"""Runtimes around the same core: the embedded single-process server and the Kafka workers."""
