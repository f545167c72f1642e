"""Control characters from a node never leave pvegit raw: the shared function and its
uses for the terminal, log lines and notifications."""

from __future__ import annotations

import io
import logging
import os
import sys

from hypothesis import given
from hypothesis import strategies as st

from pvegit.cli.web import log_handler
from pvegit.node.tarstream import display_path, parse_display_path
from pvegit.service.notify import Event
from pvegit.textsafe import EscapingStream, printable

HOSTILE = "\x1b]0;pwned\x07\x1b[2J"
RAW = ("\x1b", "\x07", "\x9b", "\r")


def clean(text: str) -> bool:
    return not any(character in text for character in RAW)


def test_printable_shows_escape_sequences_as_text() -> None:
    assert printable(HOSTILE) == "\\x1b]0;pwned\\x07\\x1b[2J"
    assert printable("a\tb\nc\rd") == "a\\x09b\\x0ac\\x0dd"
    assert printable("a\tb\nc\rd", lines=True) == "a\tb\nc\\x0dd"
    assert printable("csi \x9b 2J") == "csi \\xc2\\x9b 2J"  # C1, as its UTF-8 bytes
    assert printable("caf\udce9") == "caf\\xe9"  # a byte that is not UTF-8
    assert printable("ünïcödé 名前 \\x1b") == "ünïcödé 名前 \\x1b"


@given(st.text() | st.binary().map(lambda raw: raw.decode("utf-8", "surrogateescape")))
def test_names_shown_are_safe_one_line_and_read_back(name: str) -> None:
    shown = display_path(name)
    assert clean(shown) and "\n" not in shown
    assert printable(shown) == shown  # applying it twice changes nothing
    if "\\x" not in name:  # a literal \xNN in a name is read as an escape (documented)
        assert parse_display_path(shown) == name


def test_the_cli_streams_escape_what_they_print() -> None:
    target = io.StringIO()
    stream = EscapingStream(target)
    print(f"pvegit: {HOSTILE}\nnext line", file=stream)  # type: ignore[arg-type]
    assert target.getvalue() == "pvegit: \\x1b]0;pwned\\x07\\x1b[2J\nnext line\n"


def test_raw_bytes_are_escaped_for_a_terminal_only() -> None:
    leader, follower = os.openpty()
    try:
        with open(follower, "w", encoding="utf-8", closefd=False) as terminal:
            EscapingStream(terminal).buffer.write(HOSTILE.encode() + b"\n")
            terminal.flush()
        # (the terminal itself turns "\n" into "\r\n")
        assert os.read(leader, 4096) == b"\\x1b]0;pwned\\x07\\x1b[2J\r\n"
        piped = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        EscapingStream(piped).buffer.write(HOSTILE.encode())  # a pipe gets the file as it is
        assert piped.buffer.getvalue() == HOSTILE.encode()  # type: ignore[attr-defined]
    finally:
        os.close(leader)
        os.close(follower)


def test_a_log_line_is_one_line_without_control_characters() -> None:
    output = io.StringIO()
    logger = logging.getLogger("pvegit.test.textsafe")
    logger.addHandler(log_handler(output))
    logger.propagate = False
    try:
        try:
            raise RuntimeError(f"tar said {HOSTILE}")
        except RuntimeError:
            logger.exception("run failed host=pve1 error=%s", f"{HOSTILE}\nlevel=INFO forged")
    finally:
        logger.handlers.clear()
    text = output.getvalue()
    assert clean(text)
    first, *traceback = text.splitlines()
    assert first.endswith("error=\\x1b]0;pwned\\x07\\x1b[2J\\x0alevel=INFO forged")
    assert "RuntimeError: tar said \\x1b]0;pwned" in traceback[-1]


def test_notifications_carry_no_control_characters() -> None:
    event = Event("failed", "pve1", f"pve1: {HOSTILE}\nBcc: x@example.org", f"a\n{HOSTILE}")
    assert event.title == "pve1: \\x1b]0;pwned\\x07\\x1b[2J\\x0aBcc: x@example.org"
    assert event.message == "a\n\\x1b]0;pwned\\x07\\x1b[2J"


def test_the_cli_puts_the_terminal_back() -> None:
    from pvegit.cli import main

    streams = sys.stdout, sys.stderr
    assert main(["categories"]) == 0
    assert (sys.stdout, sys.stderr) == streams
