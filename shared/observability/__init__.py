"""Metrics, health checks and tracing shared by every process."""
