"""Manifests and archive facts, from small files made here."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from builder.errors import BuildError
from builder.oci.archive import sha256_file
from builder.vm.manifest import dpkg_packages, image_manifest, write_manifest
from builder.vm.preload import read_archive


def save_archive(path: Path, manifest: object) -> Path:
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_read_classic_archive(tmp_path: Path) -> None:
    a = read_archive(save_archive(tmp_path / "a.tar", [{"Config": "ab" * 32 + ".json", "RepoTags": ["x/y:1"]}]))
    assert (a.ref, a.image_id) == ("x/y:1", "sha256:" + "ab" * 32)


def test_read_oci_layout_archive(tmp_path: Path) -> None:
    a = read_archive(save_archive(tmp_path / "a.tar", [{"Config": "blobs/sha256/" + "cd" * 32,
                                                        "RepoTags": ["x/y:2"]}]))
    assert a.image_id == "sha256:" + "cd" * 32


def test_archive_must_hold_one_tagged_image(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="exactly one tagged image"):
        read_archive(save_archive(tmp_path / "a.tar", [{"Config": "a.json", "RepoTags": []}]))
    (tmp_path / "b.tar").write_bytes(b"not a tar")
    with pytest.raises(BuildError, match="not a `docker save` archive"):
        read_archive(tmp_path / "b.tar")


def test_dpkg_packages(tmp_path: Path) -> None:
    f = tmp_path / "dib-manifest-dpkg-x"
    f.write_text(json.dumps({"packages": [
        {"package": "zlib1g", "arch": "amd64", "version": "1:1.2", "status": "ii "},
        {"package": "adduser", "arch": "all", "version": "3.134", "status": "ii "},
        {"package": "gone", "arch": "all", "version": "1", "status": "rc "},
    ]}))
    assert dpkg_packages(f) == (("adduser", "3.134"), ("zlib1g", "1:1.2"))


def test_image_manifest_is_deterministic(tmp_path: Path) -> None:
    image = tmp_path / "c.qcow2"
    image.write_bytes(b"image")
    kwargs = dict(cell="postgresql-15", target="vm", image=image, image_format="qcow2", files={},
                  image_sha256=sha256_file(image).split(":", 1)[1],
                  guest_base={"suite": "bookworm", "key": "k"}, agent={"version": "26.0.0"},
                  preloaded=[{"role": "exporter", "ref": "e:1", "id": "sha256:2"},
                             {"role": "datastore", "ref": "d:1", "id": "sha256:1"}],
                  packages=[("b", "2"), ("a", "1")], inputs={"key": "abc"})
    one = image_manifest(**kwargs)  # type: ignore[arg-type]
    two = image_manifest(**kwargs)  # type: ignore[arg-type]
    assert one == two
    assert one["image"]["sha256"] == "6105d6cc76af400325e94d588ce511be5bfdbb73b437dc51eca43917d7a43e3d"
    assert [p["role"] for p in one["preloaded_images"]] == ["datastore", "exporter"]
    assert one["packages"][0] == {"name": "a", "version": "1"}
    out = write_manifest(tmp_path / "c.qcow2.manifest.json", one)
    assert json.loads(out.read_text()) == one


class MovingTagEngine:
    """An engine edge whose keyed tag another build dir moves once, right after our first tag."""

    def __init__(self) -> None:
        self.tags: dict[str, str] = {}
        self.moves = 1

    def tag(self, image_id: str, ref: str) -> None:
        self.tags[ref] = image_id
        if self.moves:
            self.moves -= 1
            self.tags[ref] = "sha256:" + "ff" * 32

    def save(self, ref: str, out: io.BufferedWriter) -> None:
        hexdigest = self.tags[ref].removeprefix("sha256:")
        data = json.dumps([{"Config": f"{hexdigest}.json", "RepoTags": [ref]}]).encode()
        with tarfile.open(fileobj=out, mode="w") as tar:
            info = tarfile.TarInfo("manifest.json")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_preload_saves_the_recorded_image_even_when_its_tag_moved(tmp_path: Path) -> None:
    from builder.graph.step import RunContext
    from builder.oci.values import ImageArtifact
    from builder.vm.steps import GuestImageAction

    engine = MovingTagEngine()
    action = GuestImageAction(RunContext(tmp_path, engine=lambda: engine))
    image = ImageArtifact(ref="guestforge/postgresql:15-abc", tag="guestforge/postgresql:15",
                          id="sha256:" + "ab" * 32, size=1, layers=())
    saved = read_archive(action._save(image, tmp_path / "datastore.tar"))
    assert (saved.ref, saved.image_id) == (image.ref, image.id)

    engine.moves = 10  # it keeps moving: a clear error, not an image that is not the artifact
    with pytest.raises(BuildError, match="kept moving"):
        action._save(image, tmp_path / "datastore.tar")
