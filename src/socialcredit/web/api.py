"""The dashboard's JSON API under ``/api``: every page's data comes from here.

Read-only. Run names are checked against the runs the server was started
with, citizen ids against the run's range; anything else is a 404 with a JSON
``{"detail": message}``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from socialcredit.web.avatar import identicon_svg
from socialcredit.web.data import MAX_PAGE, PICKS, RunData, Store

router = APIRouter(prefix="/api")

JSON = "application/json"
RunName = Annotated[str, "run name: a run directory's basename as given to `serve`"]


class RunInfo(BaseModel):
    """One run the server shows."""

    name: str
    scenario: str
    description: str = ""
    citizens: int | None = None
    days: int | None = None
    seed: int | None = None
    panel: int | None = None
    finished: str | None = None
    wall: str | None = None


class Runs(BaseModel):
    """Every run the server shows."""

    runs: list[RunInfo]


class Tile(BaseModel):
    key: str
    label: str
    value: str


class SystemFact(BaseModel):
    """One system the run's scenario runs (a score, a list, a board, its services)."""

    kind: str
    key: str
    text: str


class Summary(BaseModel):
    """Headline metrics of a run."""

    run: RunInfo
    headline: list[Tile]
    metrics: dict[str, float | None]
    panel_note: str
    systems: list[SystemFact] = []


class Message(BaseModel):
    detail: str


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Message, "description": "unknown run, citizen or list"}}


def _store(request: Request) -> Store:
    return request.app.state.store


def _run(request: Request, run: str) -> RunData:
    return _store(request).get(run)


def _json(blob: bytes) -> Response:
    return Response(content=blob, media_type=JSON)


@router.get("/runs", response_model=Runs, summary="The runs this server shows")
def list_runs(request: Request) -> dict[str, Any]:
    return {"runs": [r.info() for r in _store(request).runs.values()]}


@router.get("/runs/{run}", response_model=Summary, responses=NOT_FOUND, summary="Headline metrics of a run")
def run_summary(request: Request, run: RunName) -> dict[str, Any]:
    return _run(request, run).summary()


@router.get("/runs/{run}/charts", responses=NOT_FOUND, summary="The report's charts (plotly data and layout)")
def run_charts(request: Request, run: RunName) -> Response:
    return _json(_run(request, run).charts_json)


@router.get("/runs/{run}/picks/{kind}", responses=NOT_FOUND,
            summary="Citizens to explore: " + "; ".join(f"{k}: {v}" for k, v in PICKS.items()))
def citizen_picks(request: Request, run: RunName, kind: Literal["penalised", "misattributed", "listed", "refused"],
                  limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20) -> dict[str, Any]:
    return _run(request, run).picks(kind, limit)


@router.get("/runs/{run}/citizens/{citizen}", responses=NOT_FOUND, summary="A citizen's final state (citizens table)")
def citizen_row(request: Request, run: RunName, citizen: int) -> dict[str, Any]:
    return _run(request, run).citizen(citizen)


@router.get("/runs/{run}/citizens/{citizen}/explain", responses=NOT_FOUND,
            summary="Explain a citizen: timeline, score decomposition, sanctions, counterfactual (a replay; cached)")
def citizen_explain(request: Request, run: RunName, citizen: int) -> Response:
    return _json(_run(request, run).explain(citizen))


@router.get("/runs/{run}/citizens/{citizen}/avatar.svg", responses=NOT_FOUND,
            summary="The citizen's generated identicon (from the synthetic id only; never a face)")
def citizen_avatar(request: Request, run: RunName, citizen: int) -> Response:
    _run(request, run).check_citizen(citizen)
    return Response(content=identicon_svg(citizen), media_type="image/svg+xml",
                    headers={"Cache-Control": "public, max-age=86400"})


@router.get("/runs/{run}/shame", responses=NOT_FOUND,
            summary="The public jaywalker board: observed jaywalks, newest first, innocents marked")
def shame_board(request: Request, run: RunName, offset: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 48,
                innocent_only: bool = False) -> dict[str, Any]:
    return _run(request, run).shame(offset, limit, innocent_only)


@router.get("/runs/{run}/lists", responses=NOT_FOUND,
            summary="Court-list size, entries and exits per day and refusals by service, for a province and group")
def lists(request: Request, run: RunName, region: Annotated[int | None, Query(ge=0)] = None,
          minority: bool | None = None, urban: bool | None = None) -> dict[str, Any]:
    return _run(request, run).lists(region, minority, urban)


@router.get("/runs/{run}/audit", responses=NOT_FOUND,
            summary="Audit findings for the run's scenario and four-fifths disparate impact")
def audit(request: Request, run: RunName) -> dict[str, Any]:
    return _run(request, run).audit()
