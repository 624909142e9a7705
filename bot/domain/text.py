"""The one rule for control characters in text people or alerts give IMAS.

Single-line fields (titles, names, anything that may end up in a header such as an
e-mail subject) admit no C0/C1 control character at all, nor DEL or the Unicode line and
paragraph separators. Multi-line fields (descriptions, notes, summaries) admit tab, LF and
CR and nothing else from those ranges.

Doors that take text from a person refuse it (``check_text``: InputError 400 / a modal
error naming the field); doors that take it from a machine (alerts) normalise it
(``clean_text``), since refusing an alert would lose it.
"""

from __future__ import annotations

import re

from bot.domain.errors import InputError

_SINGLE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")


def _pattern(multiline: bool) -> re.Pattern[str]:
    return _MULTI_LINE if multiline else _SINGLE_LINE


def control_character(value: str, *, multiline: bool = False) -> str | None:
    """``U+XXXX`` of the first control character not allowed in ``value``, else None."""
    found = _pattern(multiline).search(value)
    return f"U+{ord(found.group()):04X}" if found else None


def text_problem(value: str | None, label: str, *, multiline: bool = False) -> str | None:
    """The message for ``value`` if it holds a forbidden control character, else None."""
    if not value:
        return None
    code = control_character(value, multiline=multiline)
    if code is None:
        return None
    kind = "" if multiline else " or line break"
    return f"The {label} must not contain control characters{kind} (found {code})."


def check_text(
    value: str | None, field: str, *, label: str | None = None, multiline: bool = False
) -> None:
    """Raise InputError naming ``field`` when ``value`` holds a forbidden control character."""
    problem = text_problem(value, label or field, multiline=multiline)
    if problem is not None:
        raise InputError(problem, field=field)


def clean_text(value: str, *, multiline: bool = False) -> str:
    """``value`` with every forbidden control character replaced by a space (single-line
    results are also collapsed to single spaces)."""
    cleaned = _pattern(multiline).sub(" ", value)
    return cleaned if multiline else " ".join(cleaned.split())
