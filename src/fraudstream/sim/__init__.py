"""Simulated, labelled payment traffic with named fraud scenarios."""
