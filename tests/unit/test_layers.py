"""The layer-append archives, without an engine: what is read from a save, what goes to docker load."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.oci.layers import saved_config, write_archive

BASE_CONFIG = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": {"a": "1"}, "User": "999"},
                          "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "1" * 64, "sha256:" + "2" * 64]},
                          "history": [{"created_by": "one"}, {"created_by": "two"}]}).encode()


def _tar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in entries.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_saved_config_is_the_manifest_s_config_bytes() -> None:
    config_name = hashlib.sha256(BASE_CONFIG).hexdigest() + ".json"
    saved = _tar({"aaa/layer.tar": b"x" * 4096, "aaa/json": b"{}", config_name: BASE_CONFIG,
                  "manifest.json": json.dumps([{"Config": config_name, "Layers": ["aaa/layer.tar"]}]).encode()})
    assert saved_config(io.BytesIO(saved)) == BASE_CONFIG


def test_saved_config_refuses_an_archive_of_several_images() -> None:
    saved = _tar({"manifest.json": json.dumps([{"Config": "a.json"}, {"Config": "b.json"}]).encode()})
    with pytest.raises(BuildError, match="found 2"):
        saved_config(io.BytesIO(saved))


def test_the_load_archive_carries_only_the_new_layer(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_tar({"opt/agent/bin": b"agent"}))
    diff_id = "sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest()
    sink = io.BytesIO()
    digest = write_archive(sink, BASE_CONFIG, layer, diff_id, "repo/aio:1", {"b": "2"}, "agent layer")
    with tarfile.open(fileobj=io.BytesIO(sink.getvalue())) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]
    manifest = json.loads(files["manifest.json"])[0]
    config_bytes = files[manifest["Config"]]
    assert digest == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == [*json.loads(BASE_CONFIG)["rootfs"]["diff_ids"], diff_id]
    assert config["config"]["Labels"] == {"a": "1", "b": "2"} and config["config"]["User"] == "999"
    assert [h["created_by"] for h in config["history"]] == ["one", "two", "agent layer"]
    assert len(manifest["Layers"]) == 3 and manifest["RepoTags"] == ["repo/aio:1"]
    # the base's layers are named but not sent: the engine has them
    assert set(files) == {manifest["Layers"][-1], manifest["Config"], "manifest.json"}
    assert files[manifest["Layers"][-1]] == layer.read_bytes()


def test_the_same_inputs_give_the_same_image(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    layer.write_bytes(_tar({"f": b"1"}))
    digests = {write_archive(io.BytesIO(), BASE_CONFIG, layer, "sha256:" + "3" * 64, "r:1", {}, "c") for _ in range(2)}
    assert len(digests) == 1
