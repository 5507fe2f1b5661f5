"""Model and adapter sources resolve to local directories, or fail saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.sources import SourceError, resolve
from kubellm_runtime.sources.hub import from_hub

# A loopback port nothing listens on: the hub client's connection is refused at once, and
# nothing leaves the machine.
NO_HUB = "http://127.0.0.1:9"


def model_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text("{}")
    return root


def test_file_uris_and_bare_paths_resolve(tmp_path: Path) -> None:
    path = model_dir(tmp_path / "m")
    assert resolve(f"file://{path}") == path
    assert resolve(str(path)) == path


def test_pvc_uris_resolve_under_the_mount_root(tmp_path: Path) -> None:
    path = model_dir(tmp_path / "models" / "llama")
    assert resolve("pvc://models/llama", settings=RuntimeSettings(pvc_root=tmp_path)) == path


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda root: root / "missing", "no such model directory"),
        (lambda root: root, "has no config.json"),
    ],
)
def test_a_directory_without_a_model_is_refused(tmp_path: Path, make, fragment: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SourceError, match=fragment):
        resolve(f"file://{make(tmp_path)}")


def test_an_unreachable_hub_says_so_plainly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # an empty cache
    with pytest.raises(SourceError, match="the Hugging Face hub is not reachable from here"):
        from_hub("hf://meta-llama/Llama-3.1-8B-Instruct", endpoint=NO_HUB)


@pytest.mark.parametrize(
    ("uri", "fragment"),
    [
        ("ftp://host/model", "unknown scheme"),
        ("s3:///model", "not a valid bucket name"),
        ("gs://", "not a valid bucket name"),
    ],
)
def test_unusable_uris_name_the_problem(uri: str, fragment: str) -> None:
    with pytest.raises(SourceError, match=fragment):
        resolve(uri)
