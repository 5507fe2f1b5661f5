"""The adapter is published whole or not at all: renamed into place on a volume, uploaded with
its config last to a bucket; where it cannot be written is known before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubellm_runtime.settings import RuntimeSettings
from kubellm_runtime.train import output as output_module
from kubellm_runtime.train.errors import TrainError
from kubellm_runtime.train.output import CONFIG, METADATA, Output


def adapter_files(folder: Path, weights: bytes = b"w") -> Path:
    folder.mkdir(parents=True)
    (folder / CONFIG).write_text('{"r": 8}')
    (folder / "adapter_model.safetensors").write_bytes(weights)
    return folder


def settings(tmp_path: Path) -> RuntimeSettings:
    return RuntimeSettings(pvc_root=tmp_path / "pvc", model_cache_dir=tmp_path / "cache")


def test_a_volume_gets_the_whole_adapter_by_rename(tmp_path: Path) -> None:
    out = Output("pvc://out/jobs/sql-1234", settings(tmp_path))
    out.check_writable()
    assert out.published() is None
    out.publish(adapter_files(tmp_path / "work" / "a"), {"steps": 3})
    final = tmp_path / "pvc" / "out" / "jobs" / "sql-1234"
    assert sorted(p.name for p in final.iterdir()) == sorted(
        [CONFIG, METADATA, "adapter_model.safetensors"]
    )
    assert json.loads((final / METADATA).read_text()) == {"steps": 3}
    assert out.published() == {"steps": 3}
    assert [p.name for p in final.parent.iterdir()] == ["sql-1234"]  # no staging left


def test_publishing_again_replaces_the_earlier_copy_whole(tmp_path: Path) -> None:
    out = Output("file://" + str(tmp_path / "out" / "a"), settings(tmp_path))
    out.publish(adapter_files(tmp_path / "w1", b"first"), {"steps": 1})
    out.publish(adapter_files(tmp_path / "w2", b"second"), {"steps": 2})
    final = tmp_path / "out" / "a"
    assert (final / "adapter_model.safetensors").read_bytes() == b"second"
    assert [p.name for p in final.parent.iterdir()] == ["a"]


def test_an_unwritable_location_fails_before_training(tmp_path: Path) -> None:
    (tmp_path / "pvc" / "out").mkdir(parents=True)
    (tmp_path / "pvc" / "out" / "file").write_text("not a directory")
    with pytest.raises(TrainError) as caught:
        Output("pvc://out/file/adapter", settings(tmp_path)).check_writable()
    assert caught.value.reason == "OutputNotWritable"
    assert caught.value.field == "spec.output.uri"
    assert "pvc://out/file/adapter: cannot be written" in caught.value.message
    assert str(tmp_path) not in caught.value.message  # no pod paths in the status


class Uploads:
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.order: list[str] = []

    def put(self, key: str, path: Path) -> None:
        self.objects[key] = path.read_bytes()
        self.order.append(key)

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)


def test_a_bucket_gets_every_file_before_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = Uploads()
    monkeypatch.setattr(output_module, "bucket_for", lambda *_: bucket)
    out = Output("s3://adapters/team/sql", settings(tmp_path))
    out.check_writable()
    assert bucket.objects == {}  # the probe was removed
    out.publish(adapter_files(tmp_path / "a"), {"steps": 1})
    assert bucket.order[-1] == f"team/sql/{CONFIG}"
    assert set(bucket.order[-3:]) == {
        f"team/sql/{name}" for name in (CONFIG, METADATA, "adapter_model.safetensors")
    }


def test_a_refusing_bucket_is_an_output_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubellm_runtime.sources import SourceError

    class Refusing(Uploads):
        def put(self, key: str, path: Path) -> None:
            raise SourceError(f"s3://adapters/{key}: AccessDenied (Access Denied)")

    monkeypatch.setattr(output_module, "bucket_for", lambda *_: Refusing())
    with pytest.raises(TrainError, match="AccessDenied") as caught:
        Output("s3://adapters/x", settings(tmp_path)).check_writable()
    assert caught.value.reason == "OutputNotWritable"


@pytest.mark.parametrize("uri", ["pvc://out/../etc", "s3://b/a/../../x", "file:///a/./b"])
def test_unsafe_output_uris_are_refused(tmp_path: Path, uri: str) -> None:
    with pytest.raises(TrainError) as caught:
        Output(uri, settings(tmp_path))
    assert caught.value.reason == "OutputNotWritable"
