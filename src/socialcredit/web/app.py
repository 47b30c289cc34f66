"""The dashboard app: static pages (HTML + JS that fetch ``/api``) over a set of run directories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from socialcredit.web.data import NotFoundError, Store

STATIC = Path(__file__).parent / "static"
#: Page path -> static HTML file.
PAGES = {"/": "index.html", "/citizens": "citizens.html", "/shame": "shame.html", "/lists": "lists.html",
         "/audit": "audit.html"}


def plotly_js() -> Path:
    """plotly.js as bundled with the plotly package (served locally: no CDN)."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def create_app(run_dirs: list[str | Path]) -> FastAPI:
    """The dashboard over ``run_dirs`` (names: their basenames). UserError for a bad directory."""
    from socialcredit import __version__
    from socialcredit.web.api import router

    store = Store(list(run_dirs))
    app = FastAPI(title="socialcredit dashboard", version=__version__,
                  description="Read-only JSON API over simulated runs (synthetic citizens only).")
    app.state.store = store

    @app.exception_handler(NotFoundError)
    def not_found(_request: Request, exc: NotFoundError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(RequestValidationError)
    def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("loc", ("",))[0] == "path" for e in errors):  # a malformed id or list name: no such thing
            where = next(e for e in errors if e.get("loc", ("",))[0] == "path")
            return JSONResponse({"detail": f"not found: {where['loc'][-1]} {where.get('input')!r} "
                                 f"({where.get('msg', 'invalid')})"}, status_code=404)
        return JSONResponse({"detail": [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors]},
                            status_code=422)

    app.include_router(router)

    for route, filename in PAGES.items():
        app.add_api_route(route, _page(filename), include_in_schema=False, methods=["GET"])

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly_file() -> FileResponse:
        return FileResponse(plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> FileResponse:
        return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _page(filename: str) -> Callable[[], FileResponse]:
    path = STATIC / filename

    def page() -> FileResponse:
        return FileResponse(path, media_type="text/html", headers={"Cache-Control": "no-cache"})

    page.__name__ = f"page_{path.stem}"
    return page
