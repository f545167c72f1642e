"""The installed collector's allowed(): where a name really leads decides, symlinks resolved.

allowed() resolves a name without a fork when it is not a symlink (its folder
through cd -P); a symlink asks readlink. Either way the real location counts.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from pvegit.node.program import _roots_check


def _allowed(names: list[str]) -> dict[str, bool]:
    """allowed() of each name, run from / as an installed collector (inline=0) runs it."""
    script = (
        _roots_check()
        + 'inline=0; cd -P / || exit 1; for p in "$@"; do if allowed "$p"; then echo "1 $p"; '
        'else echo "0 $p"; fi; done; [ "$PWD" = / ] && echo back'
    )
    lines = subprocess.run(
        ["sh", "-c", script, "allowed-test", *names], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[-1] == "back"  # it leaves the working directory where it was
    return {line[2:]: line[0] == "1" for line in lines[:-1]}


def test_the_real_location_decides_for_names_links_and_folders(tmp_path: Path) -> None:
    (tmp_path / "to-etc").symlink_to("/etc")
    (tmp_path / "to-shadow").symlink_to("/etc/shadow")
    (tmp_path / "plain").write_text("x")
    base = str(tmp_path.resolve()).lstrip("/")
    answers = _allowed(
        [
            "etc",
            "etc/hosts",
            "etc/shadow",
            "etc/gshadow",
            "var/lib/pve-cluster/config.db",
            "usr/local",
            "usr/lib",
            f"{base}/plain",  # outside the roots
            f"{base}/to-etc",  # a folder link into them
            f"{base}/to-etc/hosts",
            f"{base}/to-etc/shadow",  # never read, whichever way it is reached
            f"{base}/to-shadow",
            "etc/../etc/shadow",
        ]
    )
    assert answers == {
        "etc": True,
        "etc/hosts": True,
        "etc/shadow": False,
        "etc/gshadow": False,
        "var/lib/pve-cluster/config.db": True,
        "usr/local": True,
        "usr/lib": False,
        f"{base}/plain": False,
        f"{base}/to-etc": True,
        f"{base}/to-etc/hosts": True,
        f"{base}/to-etc/shadow": False,
        f"{base}/to-shadow": False,
        "etc/../etc/shadow": False,
    }
