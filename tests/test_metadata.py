from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pvegit.metadata import parse_metadata, quote_path, render_metadata, unquote_path
from pvegit.tarstream import Entry


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
