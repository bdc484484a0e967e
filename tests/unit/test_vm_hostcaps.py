"""Which assembly path and accelerator a host gets, from faked probes."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.vm.hostcaps import HostCaps, NoAssemblyPath, choose_accel, choose_assembly, probe


def caps(dm: bool = False, loop: bool = False, kvm: bool = False, gfs: bool = False) -> HostCaps:
    return HostCaps(device_mapper=dm, loop_partitions=loop, kvm=kvm, libguestfs=gfs)


def test_device_mapper_takes_dib_path() -> None:
    assert choose_assembly(caps(dm=True, gfs=True)).path == "dib"


def test_no_device_mapper_takes_libguestfs() -> None:
    choice = choose_assembly(caps(loop=True, gfs=True))
    assert choice.path == "guestfs"
    assert "device-mapper" in choice.reason


def test_this_kind_of_host() -> None:
    """No device-mapper, no loop partition scanning, KVM present but broken, libguestfs with TCG."""
    host = caps(dm=False, loop=False, kvm=False, gfs=True)
    assert choose_assembly(host).path == "guestfs"
    assert choose_accel(host) == "tcg"


def test_nothing_works() -> None:
    with pytest.raises(NoAssemblyPath, match="libguestfs-tools"):
        choose_assembly(caps())


def test_forcing_a_path_the_host_cannot_take() -> None:
    with pytest.raises(NoAssemblyPath, match="device-mapper"):
        choose_assembly(caps(gfs=True), prefer="dib")
    with pytest.raises(NoAssemblyPath, match="libguestfs"):
        choose_assembly(caps(dm=True), prefer="guestfs")
    assert choose_assembly(caps(dm=True, gfs=True), prefer="guestfs").path == "guestfs"


def test_kvm_when_usable() -> None:
    assert choose_accel(caps(kvm=True)) == "kvm"


def test_probe_uses_given_probes() -> None:
    calls: list[str] = []

    def fake(name: str, result: bool):  # type: ignore[no-untyped-def]
        def p(log: Path | None) -> bool:
            calls.append(name)
            return result
        return p

    got = probe(device_mapper=fake("dm", True), loop_partitions=fake("loop", False), kvm=fake("kvm", False),
                libguestfs=fake("gfs", True))
    assert got == caps(dm=True, gfs=True)
    assert calls == ["dm", "loop", "kvm", "gfs"]
    assert "device-mapper: yes" in got.describe()
