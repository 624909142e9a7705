"""Orchestration flows. A flow changes state and enqueues side effects in the caller's
transaction; it never calls HTTP (providers run later, from the outbox)."""
