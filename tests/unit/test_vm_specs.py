"""The VM suites' expectations are typed both ways: written by the builder, read back by the suites."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from builder.matrix.loader import load_matrix
from builder.vm.specs import AgentLayout, BootSpec, ImageSpec
from builder.vm.verify import image_spec
from tests.conftest import ROOT

AGENT = load_matrix(ROOT / "matrix.yaml").agent


def test_image_spec_round_trips_through_its_file(tmp_path: Path) -> None:
    spec = image_spec(cell="postgresql-15", flavor="postgresql", agent=AGENT, image_ids={"guestforge/x:1": "sha256:a"})
    back = ImageSpec.read(spec.write(tmp_path / "image-spec.json"))
    assert back == spec and back.agent == AgentLayout.of(AGENT) and back.datasources == ("NoCloud", "ConfigDrive")


def test_a_spec_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    spec = image_spec(cell="c", flavor="redis", agent=AGENT, image_ids={})
    path = spec.write(tmp_path / "spec.json")
    with pytest.raises(pydantic.ValidationError):
        BootSpec.read(path)     # a boot suite handed an image spec fails loudly, not with KeyError mid-run
    path.write_text(path.read_text().replace('"cell"', '"cells"'))
    with pytest.raises(pydantic.ValidationError):
        ImageSpec.read(path)
