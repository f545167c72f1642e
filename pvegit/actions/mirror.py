"""Push mirrors: every host's history copied to another git server after each commit.

``[server] mirror = "ssh://git@git.example.org/pve/{host}.git"`` in pvegit.toml
(``{host}`` is the host's name; file://, ssh:// and https:// work). This is
how the history gets off-site and how a fleet outgrows one pvegit machine.
A failed push is reported like any failure and retried with the next commit.
The URL may carry credentials (``https://user:token@...``): what this module
returns or raises shows it redacted (pvegit.content.redact).
"""

from __future__ import annotations

import io
from pathlib import Path

from pvegit.config.home import Home
from pvegit.content.redact import redact_text, redact_url
from pvegit.errors import PvegitError
from pvegit.git.repo import BRANCH, HostRepository
from pvegit.system.locks import exclusive


def mirror_url(template: str, host: str) -> str:
    return template.replace("{host}", host)


def push_mirror(home: Home, host: str, template: str) -> str:
    """Push the host's main branch to its mirror (forced: pvegit's history wins); return
    the URL, redacted.

    Raises PvegitError saying why the push failed, with the URL's credentials hidden.
    """
    from dulwich import porcelain
    from dulwich.repo import Repo

    url = mirror_url(template, host)
    errors = io.BytesIO()
    with exclusive(home.lock_path(host), timeout=600, what=host):
        # A damaged repository is never pushed: the mirror may hold what it lost.
        HostRepository(home.repo_path(host)).close()
        if url.startswith("file://"):
            target = Path(url[len("file://") :])
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                Repo.init_bare(str(target), mkdir=True, default_branch=b"main").close()
        try:
            porcelain.push(
                str(home.repo_path(host)),
                url,
                [BRANCH + b":" + BRANCH],
                force=True,
                outstream=io.BytesIO(),
                errstream=errors,
            )
        except Exception as err:  # dulwich raises many kinds; all mean "not pushed"
            detail = errors.getvalue().decode("utf-8", "replace").strip()
            message = f"mirror push of {host} to {url} failed: {err}" + (
                f" ({detail})" if detail else ""
            )
            # Not chained: dulwich's own exception carries the URL as it was given,
            # and a traceback of it would show the credentials.
            raise PvegitError(redact_text(message, url)) from None
    return redact_url(url)
