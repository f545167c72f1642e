"""The audit log: who did what."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pvegit.config.roles import ADMIN
from pvegit.state.restorelog import read_audit_log
from web.context import context_of, render
from web.guard import page

# The badge style of each state of an entry written before its action (a restore).
_BADGES = {
    "running": "running",
    "completed": "ok",
    "failed": "failed",
    "refused": "refused",
    "interrupted": "failed",
}


@page(role=ADMIN)
def audit_page(request: Request, user: str) -> Response:
    context = context_of(request)
    store = context.store
    host = request.query_params.get("host") or None
    action = request.query_params.get("action") or None
    events = read_audit_log(context.home, store, limit=200, host=host, action=action)
    actions = store.audit_actions(limit=1000)
    return render(
        request,
        "audit.html",
        {
            "nav": "audit",
            "events": events,
            "badges": _BADGES,
            "host": host or "",
            "action": action or "",
            "actions": actions,
            "hosts": [item.name for item in store.hosts()],
        },
    )
