"""A fresh clone's tests need nothing beside the repository (issue 16 item 10): no test,
benchmark or CI script reads the shared reference folder; the vendor schemas they use are
in tests/data/schemas with their source and licence."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = re.compile(r"\.\./shared|/work/shared|parent\s*/\s*[\"']shared[\"']")


def test_nothing_reads_outside_the_repository() -> None:
    files = [*ROOT.joinpath("tests").rglob("*.py"), *ROOT.joinpath("bench").rglob("*.py")]
    files += [p for p in ROOT.joinpath(".ci").rglob("*") if p.is_file()]
    offenders = []
    for path in files:
        if path == Path(__file__).resolve():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            stripped = line.strip()
            if OUTSIDE.search(line) and not stripped.startswith(('"""', "#")):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {stripped}")
    assert offenders == [], "\n".join(offenders)


def test_vendored_schemas_name_their_source_and_licence() -> None:
    folder = ROOT / "tests" / "data" / "schemas"
    note = (folder / "SOURCE.md").read_text()
    for schema in sorted(p.name for p in folder.iterdir() if p.suffix in (".json", ".yaml")):
        assert f"`{schema}`" in note, schema
    assert "Apache License 2.0" in note and "MIT licence" in note
