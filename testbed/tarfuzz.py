"""Hostile tar streams for the fuzz run (tests/test_tarstream.py, bench/fuzz_tar.py).

``hostile_stream(rng)`` starts from a valid GNU or pax archive and damages it
the ways a broken or malicious node could: bytes overwritten (names, sizes,
type flags, checksums, magic), headers with absurd sizes (GNU long names, pax
records, sparse files), members repeated, the stream cut anywhere.
``parse_bounded`` runs the parser on it with small limits and reports what it
did and the peak memory it took.
"""

from __future__ import annotations

import io
import random
import tarfile
import tracemalloc
from dataclasses import dataclass

from pvegit.errors import CollectError
from pvegit.node.tarstream import check_member_name, read_tar_stream

MAX_FILE = 64 * 1024
MAX_TOTAL = 256 * 1024
NAMES = [
    "etc/hosts",
    "etc/pve/a b.cfg",
    "etc/../x",
    "/etc/passwd",
    "etc/.git/config",
    "etc/" + "d/" * 60 + "f",
    "etc/caf\udce9",
    "etc/new\nline",
    "etc",
]
TYPES = [
    tarfile.REGTYPE,
    tarfile.DIRTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.CHRTYPE,
    tarfile.FIFOTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.XHDTYPE,
    tarfile.GNUTYPE_SPARSE,
    b"Z",
]
# Offsets of a ustar header's fields: name, mode, uid, size, mtime, chksum, type, link, magic.
FIELDS = [
    (0, 100),
    (100, 8),
    (108, 8),
    (124, 12),
    (136, 12),
    (148, 8),
    (156, 1),
    (157, 100),
    (257, 8),
]


def _valid(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    form = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
    with tarfile.open(fileobj=buffer, mode="w", format=form, errors="surrogateescape") as archive:
        for _ in range(rng.randrange(1, 6)):
            info = tarfile.TarInfo(rng.choice(NAMES))
            info.type = rng.choice(TYPES[:6])
            data = rng.randbytes(rng.randrange(0, 3000)) if info.type == tarfile.REGTYPE else b""
            info.size = len(data)
            if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = rng.choice(NAMES)
            archive.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _absurd_header(rng: random.Random) -> bytes:
    """A header whose size field claims far more than follows (or a negative/base-256 size)."""
    header = bytearray(512)
    header[0:9] = b"etc/evil\0"
    header[156:157] = rng.choice(TYPES)
    size = rng.choice([b"77777777777", b"00000100000", b"-1\0", b"\x80" + b"\xff" * 11])
    header[124 : 124 + len(size)] = size
    header[257:263] = b"ustar\0"
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    return bytes(header) + rng.randbytes(rng.randrange(0, 2048))


def hostile_stream(rng: random.Random) -> bytes:
    data = bytearray(_valid(rng))
    for _ in range(rng.randrange(0, 6)):
        move = rng.randrange(5)
        if move == 0 and data:  # overwrite a header field of some block
            block = rng.randrange(max(1, len(data) // 512)) * 512
            offset, width = rng.choice(FIELDS)
            start = block + offset
            data[start : start + width] = rng.randbytes(width)[: max(0, len(data) - start)]
        elif move == 1:  # an absurd header in the middle
            at = rng.randrange(len(data) // 512 + 1) * 512
            data[at:at] = _absurd_header(rng)
        elif move == 2 and data:  # random bytes anywhere
            at = rng.randrange(len(data))
            data[at : at + 16] = rng.randbytes(16)
        elif move == 3:  # a repeated chunk (duplicate members, hard links to themselves)
            start = rng.randrange(len(data) + 1)
            data[start:start] = data[start : start + rng.randrange(0, 4096)]
        else:  # cut anywhere
            data = data[: rng.randrange(len(data) + 1)]
    return bytes(data)


@dataclass
class Outcome:
    entries: int = 0
    refused: bool = False  # a CollectError: the run would fail and commit nothing
    peak_bytes: int = 0


def parse_bounded(data: bytes) -> Outcome:
    """Parse ``data``; any exception other than CollectError propagates (a bug)."""
    outcome = Outcome()
    tracemalloc.start()
    try:
        result = read_tar_stream(
            io.BytesIO(data), requested=("etc",), max_file_bytes=MAX_FILE, max_total_bytes=MAX_TOTAL
        )
        outcome.entries = len(result.entries)
        for path, entry in result.entries.items():
            assert check_member_name(path) == path, path
            assert not path.startswith("/") and ".." not in path.split("/"), path
            assert path == "etc" or path.startswith("etc/"), path
            assert len(entry.data) <= MAX_FILE, (path, len(entry.data))
    except CollectError:
        outcome.refused = True
    finally:
        outcome.peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return outcome
