"""The collector's text: what it may read covers the catalogue, and inline it refuses
what is not a request (the installed collector is tried on real nodes in
tests/test_collector.py)."""

from __future__ import annotations

import shlex
import subprocess

from pvegit.config.categories import CATALOGUE
from pvegit.node.collector import inline_request
from pvegit.node.program import (
    COLLECT_ROOTS,
    INLINE_NAME,
    REFUSED,
    VERSION,
    program_digest,
    program_text,
)


def test_every_catalogue_path_lies_below_the_collectors_roots() -> None:
    for category in CATALOGUE:
        for path in category.paths:
            assert any(path == root or path.startswith(root + "/") for root in COLLECT_ROOTS), (
                category.name,
                path,
            )


def test_the_program_carries_its_version_and_is_the_same_every_time() -> None:
    assert program_text().startswith(f"#!/bin/sh\n# pvegit-collect {VERSION}\n")
    assert program_digest() == program_digest()
    checked = subprocess.run(["sh", "-n", "-c", program_text()], capture_output=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_inline_it_answers_its_version_and_refuses_anything_else() -> None:
    asked = subprocess.run(["sh", "-c", inline_request("version")], capture_output=True)
    assert asked.stdout == f"pvegit-collect {VERSION} inline\n".encode()
    for words in ("id", "collect 2", "collect 1 x", "'collect 1'"):
        script = f"sh -c {shlex.quote(program_text())} {INLINE_NAME} {words}"
        refused = subprocess.run(["sh", "-c", script], capture_output=True, check=False)
        assert refused.returncode == REFUSED, (words, refused)
        assert refused.stderr.startswith(b"pvegit-collect: refused: ")
