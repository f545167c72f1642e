from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pvegit.node.metadata import parse_metadata, quote_path, render_metadata, unquote_path
from pvegit.node.tarstream import Entry


@given(st.binary(min_size=1, max_size=40).filter(lambda raw: b"\0" not in raw))
def test_quoting_round_trips_any_name(raw: bytes) -> None:
    path = raw.decode("utf-8", "surrogateescape")
    quoted = quote_path(path)
    assert "\n" not in quoted
    assert unquote_path(quoted) == path


def test_plain_names_are_not_quoted() -> None:
    assert quote_path("etc/network/interfaces") == "etc/network/interfaces"
    assert quote_path("etc/a\nb") == '"etc/a\\nb"'


def test_metadata_records_modes_outside_pmxcfs_only() -> None:
    entries = [
        Entry("root/.ssh", "dir", b"", 0o700, "root", "root"),
        Entry("root/.ssh/config", "file", b"x", 0o600, "root", "root"),
        Entry("etc/pve/user.cfg", "file", b"x", 0o640, "root", "www-data"),
        Entry("etc/pve/local", "symlink", b"nodes/pve1", 0o777, "root", "www-data"),
        Entry("etc/weird name\n", "file", b"", 0o644, "1000", "1000"),
    ]
    text = render_metadata(entries).decode()
    assert "d 0700 root root root/.ssh\n" in text
    assert "f 0600 root root root/.ssh/config\n" in text
    assert "f - - - etc/pve/user.cfg\n" in text
    assert "l - - - etc/pve/local\n" in text
    infos = parse_metadata(render_metadata(entries))
    assert infos["root/.ssh"].mode == 0o700
    assert infos["etc/pve/user.cfg"].mode is None
    assert infos["etc/weird name\n"].owner == "1000"
    assert "mtime" not in text.lower().replace("no mtimes", "")


names = st.text(st.characters(codec="utf-8"), max_size=20) | st.binary(max_size=20).map(
    lambda raw: raw.decode("utf-8", "surrogateescape")
)


@given(owner=names, group=names)
def test_any_owner_and_group_name_round_trips_on_one_line(owner: str, group: str) -> None:
    entries = [
        Entry("etc/a b", "file", b"", 0o600, owner, group),
        Entry("etc/c", "dir", b"", 0o750, group, owner),
    ]
    text = render_metadata(entries)
    assert len(text.splitlines()) == 3 + 2  # the header's three lines, one per path
    infos = parse_metadata(text)
    assert (infos["etc/a b"].owner, infos["etc/a b"].group) == (owner, group)
    assert (infos["etc/c"].owner, infos["etc/c"].group) == (group, owner)


def test_names_that_would_end_a_field_are_quoted() -> None:
    text = render_metadata(
        [
            Entry("etc/x", "file", b"", 0o644, "evil user", "-"),
            Entry("etc/y", "file", b"", 0o644, "a\nd 0755 root root ../../x", ""),
        ]
    ).decode()
    assert 'f 0644 "evil user" "-" etc/x\n' in text
    assert 'f 0644 "a\\nd 0755 root root ../../x" "" etc/y\n' in text
    infos = parse_metadata(text.encode())
    assert set(infos) == {"etc/x", "etc/y"}
    assert infos["etc/x"].group == "-"  # a group named "-", not "not recorded"


# What pvegit wrote before names were quoted, for a node whose tar said the owner of
# etc/hosts was "r r a\nd 755 r r ../../x\nf 0 r" (31 bytes: GNU tar's uname field).
LEGACY = (
    b"# pvegit metadata v1: owner, group and mode of each collected path (no mtimes).\n"
    b"d 0755 root root etc\n"
    b"f 0644 r r a\n"
    b"d 755 r r ../../x\n"
    b"f 0 r root etc/hosts\n"
    b"f 0644 evil\n"
    b"d 0755 root root /tmp/absolute\n"
    b"d 0755 root root etc/./dot\n"
    b"d 0755 root root etc/twice\n"
    b"d 0700 other other etc/twice\n"
    b'f 0644 "unclosed root etc/q\n'
    b"f 0640 root www-data etc/network/interfaces\n"
    b"f 0640 root www-data etc/name with spaces\n"
)


def test_an_old_file_with_bad_lines_parses_what_it_can() -> None:
    problems: list[str] = []
    infos = parse_metadata(LEGACY, problems)
    assert set(infos) == {"etc", "a", "etc/network/interfaces", "etc/name with spaces"}
    assert infos["etc/network/interfaces"].group == "www-data"
    assert infos["etc/name with spaces"].mode == 0o640
    assert len(problems) == 7
    assert any("line 4 skipped: forbidden path component '..'" in item for item in problems)
    assert any("etc/twice is listed twice" in problem for problem in problems)


def test_plain_names_are_written_as_they_are_and_the_others_quoted() -> None:
    # Printable ASCII is kept as it is (a fast path); every other name still goes
    # through the quoting, and each form reads back.
    expected = {
        "etc/pve/nodes/pve1/qemu-server/100.conf": "etc/pve/nodes/pve1/qemu-server/100.conf",
        "": "",
        "é": "é",
        " lead": '" lead"',
        "trail ": '"trail "',
        '"quoted': '"\\"quoted"',
        "a\\b": '"a\\\\b"',
        "tab\there": '"tab\\there"',
        "del\x7f": '"del\\x7f"',
        "c1\x85": '"c1\\xc2\\x85"',
        "bad\udcff": '"bad\\xff"',
    }
    for path, quoted in expected.items():
        assert quote_path(path) == quoted, path
        assert unquote_path(quoted) == path, path
