"""Slack mrkdwn rendered for a terminal (``imas demo``): links as ``label (url)``,
channels as ``#name``, users as ``@name``, entities unescaped, lines wrapped to the
terminal's width (at most 80 columns) by display width, so emoji that take two columns
keep boxes straight. Colour comes from click, which drops it when the output is not a
terminal (no new dependency)."""

from __future__ import annotations

import re
import shutil
import textwrap
import unicodedata
from collections.abc import Callable
from typing import Any

import click

MAX_COLUMNS = 80
_ANGLE = re.compile(r"<([^<>]*)>")


def columns() -> int:
    """The terminal's width, at most ``MAX_COLUMNS`` (80 when not a terminal)."""
    return min(MAX_COLUMNS, shutil.get_terminal_size((MAX_COLUMNS, 24)).columns)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: wide and full-width characters (most emoji)
    count two, combining marks and zero-width characters none."""
    width = 0
    for char in click.unstyle(text):
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        if char in "\ufe0e\ufe0f":
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def mrkdwn_to_text(text: str, *, channel_name: Callable[[str], str | None] | None = None) -> str:
    """Slack mrkdwn as plain terminal text (see the module docstring)."""

    def entity(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("#"):
            name = label or (channel_name(target[1:]) if channel_name else None)
            return f"#{name or target[1:]}"
        if target.startswith("@"):
            return f"@{label or target[1:]}"
        if target.startswith("!"):
            special = target[1:].split("^", 1)[0]
            return label or f"@{special}"
        if label:
            return f"{label} ({target})"
        return target

    plain = _ANGLE.sub(entity, text)
    plain = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", r"\1", plain)  # *bold*
    return plain.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def wrap(line: str, width: int, *, indent: str = "") -> list[str]:
    """``line`` cut into lines of at most ``width`` columns; continuation lines get
    ``indent``."""
    if display_width(line) <= width:
        return [line]
    wide = display_width(line) - len(line)
    lead = line[: len(line) - len(line.lstrip())]
    return textwrap.wrap(
        line,
        width=max(10, width - max(0, wide)),
        initial_indent="",
        subsequent_indent=lead + indent,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [""]


def echo(text: str = "", *, indent: str = "    ", err: bool = False) -> None:
    """``click.echo`` with every line wrapped to ``columns()``."""
    width = columns()
    for line in text.split("\n"):
        for part in wrap(line, width, indent=indent):
            click.echo(part, err=err)


def boxed(title: str, lines: list[str], *, width: int | None = None) -> str:
    """``lines`` in a box at most ``width`` (default ``columns()``) columns wide; the
    title in bold where the terminal supports it."""
    outer = width or columns()
    inner = outer - 4
    body: list[str] = []
    for line in lines:
        body += wrap(line, inner, indent="  ")
    used = max([display_width(title) + 3, *(display_width(line) for line in body)])
    inner = min(inner, used)
    heading = click.style(title, bold=True)
    top = f"┌─ {heading} " + "─" * max(0, inner - display_width(title) - 1) + "┐"
    rows = [f"│ {line}{' ' * (inner - display_width(line))} │" for line in body]
    return "\n".join([top, *rows, "└" + "─" * (inner + 2) + "┘"])


class Progress:
    """What a long command is doing, on stderr (stdout stays the command's answer): a
    spinner with the current step on a terminal, one plain line per step otherwise.
    ``step(label)`` says what starts now; use as a context manager."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, title: str, *, tty: bool | None = None) -> None:
        import sys

        self.title = title
        self.tty = sys.stderr.isatty() if tty is None else tty
        self.label = ""
        self._stop: Any = None
        self._thread: Any = None

    def __enter__(self) -> Progress:
        if self.tty:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._spin, name="progress", daemon=True)
            self._thread.start()
        return self

    def _spin(self) -> None:
        frame = 0
        while not self._stop.wait(0.1):
            text = f"{self.FRAMES[frame % len(self.FRAMES)]} {self.title}: {self.label}"
            self._write("\r" + text[: columns() - 1] + "\x1b[K")
            frame += 1

    @staticmethod
    def _write(text: str) -> None:
        import sys

        sys.stderr.write(text)  # raw: click.echo would drop the escape codes under tests
        sys.stderr.flush()

    def step(self, label: str) -> None:
        self.label = label
        if not self.tty:
            click.echo(f"{self.title}: {label}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._write("\r\x1b[K")
