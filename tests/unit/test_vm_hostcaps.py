"""Which disk assembly path a host's inputs name, from the device-mapper probe."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder import session
from builder.vm import hostcaps


@pytest.mark.parametrize(("mapper", "path"), [(True, "dib"), (False, "guestfs")])
def test_assembly_follows_device_mapper(monkeypatch: pytest.MonkeyPatch, mapper: bool, path: str) -> None:
    def probe(log: Path | None = None) -> bool:
        return mapper

    monkeypatch.setattr(hostcaps, "probe_device_mapper", probe)
    assert session.host_inputs().assembly == path
