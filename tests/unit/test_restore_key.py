"""`pvegit restore-key create` on a terminal: the passphrase asked twice, never echoed.

The CLI runs on a pseudo-terminal of its own (its controlling terminal, as for
a person), so getpass reads from it exactly as it would from an admin's. The
restore key is then opened with the passphrase typed (the restore itself is
tried on real nodes in tests/test_restore_access.py).
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import paramiko

PASSPHRASE = "a long restore passphrase"
_PROMPTS = (b"passphrase for the new restore key: ", b"the passphrase again: ")


def _on_a_terminal(home: Path, passphrases: tuple[bytes, bytes]) -> tuple[int, bytes]:
    """Run `pvegit restore-key create` on a pty and type each passphrase after its
    prompt; return its exit status and everything the terminal showed."""
    command = [sys.executable, "-m", "pvegit", "--home", str(home), "restore-key", "create"]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: pvegit on its controlling terminal
        os.execv(sys.executable, command)
    answers = list(zip(_PROMPTS, passphrases, strict=True))
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while True:
            if answers and answers[0][0] in shown:
                os.write(terminal, answers.pop(0)[1] + b"\n")
            left = deadline - time.monotonic()
            assert left > 0, shown.decode("utf-8", "replace")
            if not select.select([terminal], [], [], left)[0]:
                continue
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the child ended
                break
            if not chunk:
                break
            shown += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(terminal)
    return os.waitstatus_to_exitcode(status), shown


def _home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    subprocess.run(
        [sys.executable, "-m", "pvegit", "--home", str(home), "init"],
        check=True,
        capture_output=True,
    )
    return home


def test_two_different_passphrases_make_no_key(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, shown = _on_a_terminal(home, (PASSPHRASE.encode(), b"another passphrase here"))
    assert code != 0, shown
    assert b"the two passphrases differ: no restore key was made" in shown
    assert not list((home / "ssh").glob("restore*")), list((home / "ssh").iterdir())


def test_the_same_passphrase_twice_makes_a_key_it_opens(tmp_path: Path) -> None:
    home = _home(tmp_path)
    code, shown = _on_a_terminal(home, (PASSPHRASE.encode(), PASSPHRASE.encode()))
    assert code == 0, shown
    assert all(prompt in shown for prompt in _PROMPTS)
    assert PASSPHRASE.encode() not in shown  # never echoed
    (private,) = (home / "ssh").glob("restore_ed25519")
    key = paramiko.Ed25519Key.from_private_key_file(str(private), password=PASSPHRASE)
    assert key.get_name() == "ssh-ed25519"
    for path in home.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path
