"""Incoming alert webhooks (Alertmanager, Grafana, Datadog, Sentry, the IMAS custom format).

``handlers.webhooks.parsers`` turns one request body into a list of ``ParsedAlert`` values:
pure functions, no database, no HTTP, raising only ``bot.domain.errors.InputError`` on bad input.
The HTTP route authenticates the request first (bearer token, or the Sentry HMAC signature
via ``verify_sentry_signature``), then parses, then hands the alerts to the alert flow,
which applies the rules of ``bot.alert_rules``.
"""
