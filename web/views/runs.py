"""Runs: the log of every snapshot attempt, one run's page, and its live progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pvegit.errors import NotFound
from pvegit.service.progress import SHOWN_STAGES, run_progress
from pvegit.state.liveness import settle_runs, settled_run
from pvegit.state.store import Run, RunStatus
from web.context import context_of, render
from web.guard import page, stream

PAGE = 50
_POLL_SECONDS = 0.25


def find_run(request: Request) -> Run:
    """The run the URL names, settled if nobody runs it any more (404 if there is none)."""
    context = context_of(request)
    try:
        return settled_run(context.home, context.store, request.path_params["id"])
    except NotFound as err:
        raise HTTPException(404, str(err)) from err


@page
def run_list(request: Request, user: str) -> Response:
    context = context_of(request)
    store = context.store
    host = request.query_params.get("host") or None
    status = RunStatus.parse(request.query_params.get("status"))
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() else None
    settle_runs(context.home, store, host)
    runs = store.runs(host, limit=PAGE, status=status, before=before)
    return render(
        request,
        "runs.html",
        {
            "nav": "runs",
            "runs": runs,
            "host": host or "",
            "status": status or "",
            "statuses": list(RunStatus),
            "hosts": [item.name for item in store.hosts()],
            "older": runs[-1].id if len(runs) == PAGE else None,
        },
    )


@page
def run_page(request: Request, user: str) -> Response:
    run = find_run(request)
    return render(
        request,
        "run.html",
        {"nav": "runs", "run": run, "stages": SHOWN_STAGES, "progress": run_progress(run)},
    )


@stream
async def run_events(request: Request, user: str) -> Response:
    """Server-Sent Events: the run's progress until it ends."""
    context = context_of(request)
    run = find_run(request)

    async def events() -> AsyncIterator[str]:
        last = None
        current = run
        while True:
            state = run_progress(current).to_json()
            if state != last:
                yield f"data: {json.dumps(state)}\n\n"
                last = state
            if not current.is_running or await request.is_disconnected():
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(_POLL_SECONDS)
            current = await run_in_threadpool(settled_run, context.home, context.store, run.id)

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
