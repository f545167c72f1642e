"""Helpers shared by the command modules."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from pathlib import Path
from typing import Any

from pvegit.config.home import Home, default_home
from pvegit.state.opening import open_state
from pvegit.state.store import Store


def open_home(arguments: argparse.Namespace) -> tuple[Home, Store]:
    """The Home and its Store, initializing the home on first use.

    Refuses (StateDamaged) a missing, empty or unreadable state.db while the
    repositories hold history: see pvegit/state/opening.py.
    """
    home = home_of(arguments)
    return home, open_state(home)


def home_of(arguments: argparse.Namespace) -> Home:
    """The home ``--home`` (else $PVEGIT_HOME, else the default) names, as an absolute path:
    local hosts made from it (the demo node's ``local:`` address) need one."""
    return Home(Path(arguments.home or default_home()).absolute())


def actor() -> str:
    """Who is acting, for the audit log: the local user behind the CLI."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def format_time(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def ask_yes(question: str) -> bool:
    """Ask on the terminal; False when there is no terminal to ask on."""
    if not sys.stdin.isatty():
        return False
    answer = input(f"{question} [y/N] ").strip().lower()
    return answer in ("y", "yes")
