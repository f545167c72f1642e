"""The pvegit web UI (Starlette + Jinja2). Uses the engine in pvegit/; never the reverse."""
