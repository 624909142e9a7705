"""War-room channel names: ``inc-<short id>-<slug of title>``, e.g.
``inc-a1b2c3-redis-cluster-down`` for INC-A1B2C3 (the short id's own ``INC-`` prefix is
the channel's ``inc-``, rather than ``inc-inc-a1b2c3``).

Slack's rules: lower-case letters, digits, hyphens and underscores only, at most 80
characters, not only punctuation. The result is deterministic for a given incident, so a
retried creation asks for the same name (and ``name_taken`` can be recognised as ours).
"""

from __future__ import annotations

import re
import unicodedata

MAX_LEN = 80


def slugify(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())
    return re.sub(r"-{2,}", "-", slug).strip("-")


def channel_name(short_id: str, title: str, *, suffix: str = "") -> str:
    """The war-room channel name for an incident, at most 80 characters."""
    code = short_id.lower()
    base = code if code.startswith("inc-") else f"inc-{code}"
    slug = slugify(title)
    room = MAX_LEN - len(base) - len(suffix) - 1
    if slug and room > 0:
        slug = slug[:room].rstrip("-")
        name = f"{base}-{slug}" if slug else base
    else:
        name = base
    return f"{name}{suffix}"[:MAX_LEN]
