"""The ``pvegit`` command line.

The parser is built here; each group of commands lives in its own module
(hosts.py, snapshots.py, history.py) and is imported only when it runs, so
``pvegit --help`` and ``pvegit log`` never pay for paramiko.
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import sys
from collections.abc import Iterable, Sequence

from pvegit.errors import PvegitError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PARTIAL = 3


def runs_exit_code(statuses: Iterable[str]) -> int:
    """How the runs' outcomes end ``pvegit snapshot`` (local or ``--remote``): 1 if any
    failed or was refused, else 3 if any was partial, else 0."""
    from pvegit.state.runs import RunStatus

    found = {RunStatus.parse(status) for status in statuses}
    if any(status is not None and status.is_failure for status in found):
        return EXIT_FAILED
    if RunStatus.PARTIAL in found:
        return EXIT_PARTIAL
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used by the tests that check the docs)."""
    from pvegit.cli.arguments import build_parser as build

    return build()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Everything it prints goes through pvegit.textsafe.EscapingStream: names,
    messages and contents from a node never reach the terminal with a control
    character in them.
    """
    from pvegit.textsafe import EscapingStream

    parser = build_parser()
    arguments = parser.parse_args(argv)
    module_name, function_name = arguments.handler
    module = importlib.import_module(f"pvegit.cli.{module_name}")
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = EscapingStream(sys.stdout), EscapingStream(sys.stderr)
    try:
        return int(getattr(module, function_name)(arguments))
    except PvegitError as err:
        print(f"pvegit: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("pvegit: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    finally:
        sys.stdout, sys.stderr = streams


def run() -> int:
    """The ``pvegit`` program: ``main`` with a private umask.

    pvegit holds root keys and configuration: what it creates is for its user
    only. (Set here, not in ``main``, which tests call inside their own process.)
    """
    os.umask(0o077)
    # A node's file names may hold any byte: print them escaped, never fail on them.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    return main()
