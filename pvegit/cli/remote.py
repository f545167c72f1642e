"""``pvegit snapshot --remote URL``: ask a pvegit server to take snapshots.

For scripts on other machines (a pre-upgrade hook, a CI job): start the runs
through the JSON API, follow them until they end, print one line per host and
exit like a local ``pvegit snapshot``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pvegit.cli import runs_exit_code
from pvegit.errors import ConfigError, ConnectError, PvegitError
from pvegit.state.runs import RunStatus

POLL_SECONDS = 1.0


def _call(base: str, token: str, method: str, path: str, timeout: float) -> Any:
    request = urllib.request.Request(
        urllib.parse.urljoin(base.rstrip("/") + "/", path.lstrip("/")),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        data=b"" if method == "POST" else None,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read()).get("error", "")
        except (ValueError, AttributeError):
            message = ""
        raise PvegitError(f"{base}: HTTP {err.code}: {message or err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise ConnectError(f"cannot reach the pvegit server at {base}: {err}") from err


def remote_snapshots(arguments: argparse.Namespace) -> int:
    token = arguments.token or os.environ.get("PVEGIT_TOKEN")
    if not token:
        raise ConfigError(
            "--remote needs an API token: --token T or $PVEGIT_TOKEN "
            "(create one with 'pvegit token add NAME' on the server)"
        )
    if arguments.all or not arguments.names:
        raise ConfigError("with --remote, name the hosts to snapshot")
    base = arguments.remote
    runs = {
        name: _call(base, token, "POST", f"api/v1/hosts/{name}/snapshot", arguments.timeout)["run"]
        for name in arguments.names
    }
    results: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 3600
    while len(results) < len(runs):
        for name, run_id in runs.items():
            if name in results:
                continue
            run = _call(base, token, "GET", f"api/v1/runs/{run_id}", arguments.timeout)
            if run["status"] != RunStatus.RUNNING:
                results[name] = run
                commit = f" commit {run['commit'][:10]}" if run.get("commit") else ""
                line = f"{name}: {run['status']}{commit} (run {run_id})"
                if run.get("error"):
                    line += f": {run['error']}"
                clean = run["status"] in (RunStatus.CHANGED, RunStatus.UNCHANGED)
                stream = sys.stdout if clean else sys.stderr
                print(line, file=stream, flush=True)
        if len(results) < len(runs):
            if time.monotonic() > deadline:
                raise PvegitError("the remote runs did not finish within an hour")
            time.sleep(POLL_SECONDS)
    if arguments.json:
        print(json.dumps(list(results.values()), indent=2))
    return runs_exit_code(run["status"] for run in results.values())
