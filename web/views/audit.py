"""The audit log: who did what."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from pvegit.roles import ADMIN
from web.context import context_of, render
from web.guard import page


@page(role=ADMIN)
def audit_page(request: Request, user: str) -> Response:
    store = context_of(request).store
    host = request.query_params.get("host") or None
    action = request.query_params.get("action") or None
    events = store.audit_events(limit=200, host=host, action=action)
    actions = sorted({event["action"] for event in store.audit_events(limit=1000)})
    return render(
        request,
        "audit.html",
        {
            "nav": "audit",
            "events": events,
            "host": host or "",
            "action": action or "",
            "actions": actions,
            "hosts": [item.name for item in store.hosts()],
        },
    )
