"""GUID partition tables as bytes (UEFI specification, chapter 5): protective MBR, primary and backup GPT.

Written by us rather than by sfdisk because sfdisk fsyncs the file it edits, and on ext4 that waits for
every dirty block of the file system, i.e. the gigabytes of disk image just written. The GUIDs are derived
from the partitions' places, so the same layout always gives the same bytes.
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

SECTOR = 512
ENTRIES = 128
ENTRY_SIZE = 128
ENTRY_SECTORS = ENTRIES * ENTRY_SIZE // SECTOR  # 32
_HEADER = struct.Struct("<8sIIIIQQQQ16sQIII")  # 92 bytes
_ENTRY = struct.Struct("<16s16sQQQ72s")
_NAMESPACE = uuid.UUID("0d6a2b8e-4f71-4c57-9c1e-52f7b0d1a9e3")


@dataclass(frozen=True)
class Partition:
    start: int  # bytes, sector-aligned
    size: int
    type_guid: str
    name: str


def _guid(*parts: object) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, ":".join(str(p) for p in parts))


def _protective_mbr(sectors: int) -> bytes:
    mbr = bytearray(SECTOR)
    # One partition of type 0xEE covering the disk (capped at 2 TiB), CHS fields as the spec asks.
    mbr[446:462] = struct.pack("<B3sB3sII", 0, b"\x00\x02\x00", 0xEE, b"\xff\xff\xff", 1,
                               min(sectors - 1, 0xFFFFFFFF))
    mbr[510:512] = b"\x55\xaa"
    return bytes(mbr)


def _header(current: int, backup: int, entries_at: int, sectors: int, disk: uuid.UUID, entries_crc: int) -> bytes:
    def pack(crc: int) -> bytes:
        return _HEADER.pack(b"EFI PART", 0x00010000, _HEADER.size, crc, 0, current, backup,
                            2 + ENTRY_SECTORS, sectors - 2 - ENTRY_SECTORS, disk.bytes_le, entries_at, ENTRIES,
                            ENTRY_SIZE, entries_crc)
    return pack(zlib.crc32(pack(0))).ljust(SECTOR, b"\0")


def table(disk_size: int, partitions: Sequence[Partition]) -> tuple[bytes, bytes]:
    """(the first 34 sectors, the last 33 sectors) of a disk of ``disk_size`` bytes with ``partitions``."""
    if disk_size % SECTOR or len(partitions) > ENTRIES:
        raise ValueError(f"cannot lay out {len(partitions)} partitions on {disk_size} bytes")
    sectors = disk_size // SECTOR
    entries = bytearray(ENTRIES * ENTRY_SIZE)
    for i, p in enumerate(partitions):
        first, last = p.start // SECTOR, (p.start + p.size) // SECTOR - 1
        if p.start % SECTOR or p.size % SECTOR or first < 2 + ENTRY_SECTORS or last > sectors - 2 - ENTRY_SECTORS:
            raise ValueError(f"partition {p.name} [{p.start}, +{p.size}) does not fit a {disk_size}-byte disk")
        entries[i * ENTRY_SIZE:(i + 1) * ENTRY_SIZE] = _ENTRY.pack(
            uuid.UUID(p.type_guid).bytes_le, _guid(disk_size, i, p.start, p.name).bytes_le, first, last, 0,
            p.name.encode("utf-16-le"))
    crc, disk = zlib.crc32(entries), _guid(disk_size, "disk")
    last = sectors - 1
    head = _protective_mbr(sectors) + _header(1, last, 2, sectors, disk, crc) + bytes(entries)
    tail = bytes(entries) + _header(last, 1, last - ENTRY_SECTORS, sectors, disk, crc)
    return head, tail
