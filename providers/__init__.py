"""Pluggable integrations: notification providers, the LID document provider (Google
Docs/Drive) and the war-room provider (Slack channels).

``PROVIDER_TYPES`` is the registry of notification provider types by their config
``type`` name. A provider type that is configured but not registered is an error at
``imas config apply`` and at start, never silently skipped.
"""

from __future__ import annotations

from providers.base import NotificationProvider
from providers.registry import PROVIDER_TYPES, build_provider, validate_provider_config

__all__ = ["PROVIDER_TYPES", "NotificationProvider", "build_provider", "validate_provider_config"]
