"""IMAS - Slack-first incident response bot (the application package)."""
