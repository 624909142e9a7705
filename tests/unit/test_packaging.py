"""What ``pip install .`` ships: the product packages and their migrations, and none of the
Slack stand-ins (equipment for the tests, the benches and ``imas demo``, kept in the
separate ``imas-standins`` distribution under ``standins/``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bot", "handlers", "storage", "providers")
SKIP = shutil.ignore_patterns(
    ".git",
    ".venv",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    ".*_cache",
    ".hypothesis",
    "*.db*",
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Builds the main wheel from a copy of the repository (stand-ins included in the copy,
    so that leaving them out is the configuration's doing, and the work tree stays clean)."""
    base = tmp_path_factory.mktemp("packaging")
    source = base / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = base / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("imas-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_ships_no_stand_in(wheel_names: set[str]) -> None:
    assert (ROOT / "standins" / "imas_standins" / "slack_api.py").exists()
    assert not [name for name in wheel_names if "standins" in name.lower()]


def test_the_wheel_ships_every_product_module(wheel_names: set[str]) -> None:
    expected = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
    }
    assert expected, "no product module found"
    assert sorted(expected - wheel_names) == []
    top_levels = {name.split("/")[0] for name in wheel_names if "/" in name}
    assert {name for name in top_levels if not name.endswith(".dist-info")} == set(PACKAGES)


def test_the_wheel_ships_the_migrations(wheel_names: set[str]) -> None:
    assert "storage/migrations/env.py" in wheel_names
    assert "storage/migrations/script.py.mako" in wheel_names
    versions = {
        f"storage/migrations/versions/{path.name}"
        for path in (ROOT / "storage" / "migrations" / "versions").glob("*.py")
    }
    assert versions
    assert versions <= wheel_names


def test_the_wheel_ships_the_dashboard_assets(wheel_names: set[str]) -> None:
    shipped = {
        f"handlers/web/{path.relative_to(ROOT / 'handlers' / 'web').as_posix()}"
        for pattern in ("templates/*.html", "static/*")
        for path in (ROOT / "handlers" / "web").glob(pattern)
    }
    assert "handlers/web/templates/create.html" in shipped
    assert "handlers/web/static/app.js" in shipped
    assert shipped <= wheel_names


def test_the_wheel_declares_the_cli_and_does_not_require_the_stand_ins(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (dist_info,) = {name.split("/")[0] for name in archive.namelist() if ".dist-info/" in name}
        entry_points = archive.read(f"{dist_info}/entry_points.txt").decode()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "imas = handlers.cli:main" in entry_points
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert requires
    assert not [line for line in requires if "standins" in line.lower()]
