"""The installed collector's allowed(): where a name really leads decides, symlinks resolved.

allowed() resolves a name without a fork when it can (its folder through
cd -P); a symlink followed for a checksum asks readlink. Either way the real
location counts: below the roots, never the password hashes, on the node's
allow-list by its name and by its place, and never a folder reached through
a link (tar would name what is inside after the link).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pvegit.node.allowlist import LISTED
from pvegit.node.program import _roots_check


def _allowed(names: list[str], listed: list[str], *, follow: bool) -> dict[str, bool]:
    """allowed() of each name, run from / as an installed collector (inline=0) runs it,
    with ``listed`` as the allow-list's paths."""
    script = (
        LISTED
        + _roots_check()
        + f"inline=0; follow={int(follow)}; set -f; IFS='\n'; a_paths=$ALLOWED\n"
        + 'cd -P / || exit 1; for p in "$@"; do if allowed "$p"; then echo "1 $p"; '
        'else echo "0 $p"; fi; done; [ "$PWD" = / ] && echo back'
    )
    lines = subprocess.run(
        ["sh", "-c", script, "allowed-test", *names],
        capture_output=True,
        text=True,
        check=True,
        env={"ALLOWED": "\n".join(listed), "PATH": "/usr/bin:/bin"},
    ).stdout.splitlines()
    assert lines[-1] == "back"  # it leaves the working directory where it was
    return {line[2:]: line[0] == "1" for line in lines[:-1]}


def test_the_real_location_decides_for_names_links_and_folders(tmp_path: Path) -> None:
    (tmp_path / "to-etc").symlink_to("/etc")
    (tmp_path / "to-shadow").symlink_to("/etc/shadow")
    (tmp_path / "plain").write_text("x")
    base = str(tmp_path.resolve()).lstrip("/")
    listed = ["etc", "usr/local", "var/lib/pve-cluster/config.db", base]
    names = [
        "etc",
        "etc/hosts",
        "etc/shadow",
        "etc/gshadow",
        "var/lib/pve-cluster/config.db",
        "usr/local",
        "usr/lib",  # outside the roots
        f"{base}/plain",  # outside the roots, though listed
        f"{base}/to-etc",  # the link itself: outside the roots
        f"{base}/to-etc/hosts",  # a file through a link: judged where it is
        f"{base}/to-etc/ssh",  # a folder through a link: refused
        f"{base}/to-etc/shadow",  # never read, whichever way it is reached
        f"{base}/to-shadow",
        "etc/../etc/shadow",
    ]
    expected = {
        "etc": True,
        "etc/hosts": True,
        "etc/shadow": False,
        "etc/gshadow": False,
        "var/lib/pve-cluster/config.db": True,
        "usr/local": True,
        "usr/lib": False,
        f"{base}/plain": False,
        f"{base}/to-etc": False,
        f"{base}/to-etc/hosts": True,
        f"{base}/to-etc/ssh": False,
        f"{base}/to-etc/shadow": False,
        f"{base}/to-shadow": False,
        "etc/../etc/shadow": False,
    }
    assert _allowed(names, listed, follow=False) == expected
    # A checksum follows a link to where it leads (/etc: listed; sha256sum of a folder
    # is nothing).
    assert _allowed(names, listed, follow=True) == {**expected, f"{base}/to-etc": True}


def test_a_name_or_place_off_the_list_is_not_allowed() -> None:
    answers = _allowed(["etc/hosts", "etc/hostname", "etc/pve"], ["etc/hosts"], follow=False)
    assert answers == {"etc/hosts": True, "etc/hostname": False, "etc/pve": False}
