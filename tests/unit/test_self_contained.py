"""The repository is self-contained: no tracked file refers to a path outside the clone.

A user's clone has nothing beside it, so a relative path that climbs out of the repository, a
step above the repository root in code, or a machine-specific absolute path works only on the
machine it was written on.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from kubellm_dev.paths import REPO_ROOT

# A relative path with at least one "..": resolved against the file that names it.
RELATIVE_UP = re.compile(r"(?<![\w./-])((?:\.\./)+[\w.-]*)")
# Code that steps above the repository root (REPO_ROOT.parent, repo.parent / ...).
ABOVE_ROOT = re.compile(r"\b(?:REPO_ROOT|REPO|repo|root|here)\.parent\b")
# Absolute paths of the development machines.
MACHINE_PATHS = re.compile(r"(?<![\w.])/work/(?:main|shared)\b")
TEXT_SUFFIXES = {
    ".py", ".sh", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".txt", ".json", ".mod", ""
}  # fmt: skip


def _tracked_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"not a git checkout ({exc}): tracked files unknown")
    paths = [REPO_ROOT / name for name in out.decode().split("\0") if name]
    return [p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES]


def _escapes(file: Path, text: str) -> list[str]:
    found: list[str] = []
    for match in RELATIVE_UP.finditer(text):
        target = (file.parent / match[1]).resolve()
        if not target.is_relative_to(REPO_ROOT):
            found.append(match[1])
    found += [m[0] for m in ABOVE_ROOT.finditer(text)]
    found += [m[0] for m in MACHINE_PATHS.finditer(text)]
    return found


def test_no_tracked_file_refers_to_a_path_outside_the_repository() -> None:
    this = Path(__file__).resolve().relative_to(Path(__file__).resolve().parents[2])
    offenders = {}
    for file in _tracked_files():
        if file.relative_to(REPO_ROOT) == this:  # its own examples
            continue
        hits = _escapes(file, file.read_text(errors="replace"))
        if hits:
            offenders[str(file.relative_to(REPO_ROOT))] = sorted(set(hits))
    assert offenders == {}


@pytest.mark.parametrize(
    ("text", "escapes"),
    [
        ('crds = repo.parent / "beside" / "kuberay-crds"', True),
        ("kubectl apply -f ../beside/kuberay-crds/v1.7.0", True),
        ("see ../../../elsewhere/file.yaml", True),
        ("ls /work/shared/notes", True),
        ("see dev/../tests/unit for the tests", False),
        ("see ../dev/kuberay (from docs/)", False),
        ("cd dev/kuberay && go mod download", False),
        ("REPO_ROOT / 'crds'", False),
    ],
)
def test_the_check_itself_tells_escapes_from_paths_inside(text: str, escapes: bool) -> None:
    file = REPO_ROOT / ("docs/benchmarks.md" if "from docs/" in text else "README.md")
    assert bool(_escapes(file, text)) is escapes
