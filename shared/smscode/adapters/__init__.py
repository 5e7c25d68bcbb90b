"""Concrete ports: Redis, queues, SMS providers, metrics and logs."""
