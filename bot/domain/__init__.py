"""The vocabulary every floor may import, and which imports nothing of IMAS.

``errors`` (the error tree), ``enums`` (severities, statuses, roles, spelled once, with the
one parser every door uses), ``alerts`` (what an alert source's payload parses into).
``storage/`` and ``providers/`` import from here and nowhere else in ``bot/``.
"""
