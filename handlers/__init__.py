"""Thin adapters: Slack listeners, REST routes, alert webhooks. Parse -> flow -> respond."""
