from __future__ import annotations

import io
import tarfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pvegit.errors import CollectError
from pvegit.node.tarstream import check_member_name, read_tar_stream
from testbed.tarfuzz import MAX_TOTAL, hostile_stream, parse_bounded


def make_tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
            else:
                archive.addfile(info)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def read(data: bytes, **options: object):  # type: ignore[no-untyped-def]
    options.setdefault("requested", ("etc",))
    return read_tar_stream(io.BytesIO(data), **options)  # type: ignore[arg-type]


def test_regular_files_dirs_and_links_are_read_with_owner_and_mode() -> None:
    data = make_tar(
        [
            (member("etc", tarfile.DIRTYPE, mode=0o755), b""),
            (member("etc/hosts", mode=0o644, uname="root", gname="root"), b"127.0.0.1 x\n"),
            (member("etc/run.sh", mode=0o750, uname="root", gname="adm"), b"#!/bin/sh\n"),
            (member("etc/link", tarfile.SYMTYPE, linkname="/etc/pve/x"), b""),
        ]
    )
    result = read(data)
    assert result.problems == []
    assert result.entries["etc/hosts"].data == b"127.0.0.1 x\n"
    assert result.entries["etc/run.sh"].executable
    assert result.entries["etc/run.sh"].group == "adm"
    assert result.entries["etc/link"].kind == "symlink"
    assert result.entries["etc/link"].data == b"/etc/pve/x"
    assert result.entries["etc"].kind == "dir"


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/shadow", "absolute"),
        ("etc/../../root/.ssh/authorized_keys", "'..'"),
        ("etc/.git/config", "'.git'"),
        ("etc/.GIT/hooks", "forbidden path component"),
        (".pvegit/metadata", "pvegit's own folder"),
        ("var/lib/secret", "not a requested path"),
    ],
)
def test_hostile_names_are_refused(name: str, why: str) -> None:
    data = make_tar([(member(name), b"x"), (member("etc/ok"), b"ok")])
    result = read(data)
    assert name not in result.entries
    assert "etc/ok" in result.entries
    assert len(result.problems) == 1 and why in result.problems[0]


def test_device_fifo_and_hard_link_members_are_skipped() -> None:
    data = make_tar(
        [
            (member("etc/dev", tarfile.CHRTYPE, devmajor=1, devminor=3), b""),
            (member("etc/fifo", tarfile.FIFOTYPE), b""),
            (member("etc/hard", tarfile.LNKTYPE, linkname="etc/passwd"), b""),
        ]
    )
    result = read(data)
    assert result.entries == {}
    assert len(result.problems) == 3
    assert all("skipped" in problem for problem in result.problems)


def test_oversized_file_is_skipped_and_total_is_capped() -> None:
    data = make_tar([(member("etc/big"), b"x" * 5000), (member("etc/small"), b"y")])
    result = read(data, max_file_bytes=4096)
    assert "etc/big" not in result.entries and "etc/small" in result.entries
    assert "per-file limit" in result.problems[0]
    with pytest.raises(CollectError, match="more than"):
        read(make_tar([(member("etc/a"), b"x" * 2_000_000)]), max_total_bytes=1_000_000)


def test_cut_stream_is_an_error_not_a_partial_tree() -> None:
    data = make_tar([(member("etc/a"), b"a" * 3000), (member("etc/b"), b"b" * 3000)])
    for cut in (100, 700, 2000, 4000):
        with pytest.raises(CollectError, match=r"broke off|corrupt|not a tar"):
            read(data[:cut])


def test_empty_stream_means_nothing_matched() -> None:
    assert read(b"").entries == {}


def test_garbage_is_not_a_tar() -> None:
    with pytest.raises(CollectError):
        read(b"<html>this is not tar</html>" * 40)


def test_entry_below_a_file_is_refused() -> None:
    data = make_tar([(member("etc/a"), b"file"), (member("etc/a/b"), b"below")])
    result = read(data)
    assert "etc/a" in result.entries and "etc/a/b" not in result.entries
    assert "not a directory" in result.problems[0]


def test_non_utf8_and_odd_names_survive() -> None:
    odd = b"etc/caf\xe9 file\nname".decode("utf-8", "surrogateescape")
    data = make_tar([(member(odd), b"x")])
    result = read(data)
    assert result.entries[odd].data == b"x"


names = st.lists(
    st.sampled_from(["a", "b", ".", "/", "-", " ", "\n", "\\", "..", ".git", "\udce9"]), max_size=12
).map("".join)


@settings(max_examples=300, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            names,
            st.sampled_from(
                [
                    tarfile.REGTYPE,
                    tarfile.DIRTYPE,
                    tarfile.SYMTYPE,
                    tarfile.CHRTYPE,
                    tarfile.LNKTYPE,
                ]
            ),
            st.binary(max_size=64),
        ),
        max_size=8,
    ),
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=20_000)),
)
def test_any_stream_yields_safe_entries_or_a_collect_error(entries, cut) -> None:  # type: ignore[no-untyped-def]
    members = []
    for name, kind, data in entries:
        info = member("etc/" + name if name and not name.startswith("/") else name or "x", kind)
        if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE):
            info.linkname = "target"
        members.append((info, data))
    data = make_tar(members)
    if cut is not None:
        data = data[:cut]
    try:
        result = read(data)
    except CollectError:
        return
    for path in result.entries:
        assert check_member_name(path) == path
        assert not path.startswith("/")
        assert ".." not in path.split("/")


@settings(max_examples=400, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_fuzz_hostile_streams_never_crash_or_grow(rng) -> None:  # type: ignore[no-untyped-def]
    """Damaged and malicious streams: entries that are safe, or a CollectError; memory
    bounded by the limits (bench/fuzz_tar.py runs this for minutes)."""
    outcome = parse_bounded(hostile_stream(rng))
    assert outcome.peak_bytes < MAX_TOTAL + 8 * 1024 * 1024, outcome


def test_a_header_claiming_a_huge_size_fails_at_once() -> None:
    """tarfile skips members by reading their claimed size in 10 KiB steps, past the end:
    a base-256 size of 2**80 bytes would spin forever without the reader's guard."""
    header = bytearray(make_tar([(member("etc/huge"), b"x")])[:512])
    header[124:136] = b"\x80" + (2**80).to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:155] = b"%06o\0" % sum(header)
    with pytest.raises(CollectError, match=r"claims more data|corrupt"):
        read(bytes(header) + b"\0" * 1024, requested=("nothing",))


def test_a_pax_record_with_undecodable_bytes_is_a_collect_error() -> None:
    """Found by bench/fuzz_tar.py: tarfile raised UnicodeDecodeError on this."""
    record = b"hdrcharset=\xb7\xb7BINARY\n"
    length = len(record) + 3
    data = b"%d " % length + record
    assert len(data) == length
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = len(data)
    raw = header.tobuf(tarfile.USTAR_FORMAT)
    padded = data + b"\0" * (-len(data) % 512)
    stream = raw + padded + make_tar([(member("etc/hosts"), b"x")])
    with pytest.raises(CollectError, match="corrupt"):
        read(stream)
