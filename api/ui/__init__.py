"""The web dashboard (SPEC §12): server-rendered pages under ``/ui/`` in the API process.

``install_dashboard(app)`` adds the pages and serves ``api/ui/static`` (the
dashboard's own script and style, and the vendored htmx and ECharts with their
licences) under ``/ui/static``: nothing is loaded from anywhere else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")


def install_dashboard(app: FastAPI) -> None:
    from api.ui import asking, manage, pages, timeline

    for module in (asking, manage, pages, timeline):
        app.include_router(module.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")


__all__ = ["install_dashboard"]
