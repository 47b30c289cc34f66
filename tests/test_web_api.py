"""The dashboard's JSON API (FastAPI TestClient), its error handling, and a bounded loopback load test."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import pytest

import socialcredit as sc
from socialcredit.errors import UserError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's note about httpx in its TestClient
    from fastapi.testclient import TestClient

from socialcredit.web.app import create_app

N = 4_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("web-api")
    a, b = root / "first", root / "second"
    sc.run("ref", citizens=N, days=150, seed=5, out=a)
    sc.run("ref", citizens=N, days=150, seed=6, out=b)
    return a, b


@pytest.fixture(scope="module")
def client(runs: tuple[Path, Path]) -> TestClient:
    return TestClient(create_app(list(runs)))


def test_runs_and_summary(client: TestClient) -> None:
    body = client.get("/api/runs").json()
    assert [r["name"] for r in body["runs"]] == ["first", "second"]
    assert body["runs"][0]["citizens"] == N and body["runs"][0]["scenario"] == "ref"
    s = client.get("/api/runs/first").json()
    assert s["run"]["name"] == "first"
    assert {t["key"] for t in s["headline"]} >= {"p_mean", "listed_ever_share", "shame_board_innocent_share"}
    assert s["metrics"]["listed_ever_share"] == sc.load(client.app.state.store.get("first").run.path).metrics[
        "listed_ever_share"]


def test_charts_are_plotly_figures_with_data(client: TestClient) -> None:
    body = client.get("/api/runs/first/charts").json()
    charts = [c for g in body["groups"] for c in g["charts"]]
    ids = {c["id"] for c in charts}
    assert {"score-distribution", "list-size", "misattribution", "disparate-ratios"} <= ids
    drawn = [c for c in charts if c["figure"]]
    assert len(drawn) >= 8
    for c in drawn:
        assert c["figure"]["data"] and "layout" in c["figure"]
    assert any(len(t.get("x") or []) > 100 for c in drawn for t in c["figure"]["data"])


@pytest.mark.parametrize("kind", ["penalised", "misattributed", "listed", "refused"])
def test_picks(client: TestClient, runs: tuple[Path, Path], kind: str) -> None:
    body = client.get(f"/api/runs/first/picks/{kind}?limit=5").json()
    rows = body["citizens"]
    assert 0 < len(rows) <= 5 and body["description"]
    cz = pl.read_parquet(runs[0] / "citizens.parquet")
    if kind == "penalised":
        assert rows[0]["points"] == cz["points"].min()
    elif kind == "listed":
        assert all(r["listed"] for r in rows)
    elif kind == "refused":
        assert [r["refused"] for r in rows] == sorted((r["refused"] for r in rows), reverse=True) and rows[0]["summary"]
    else:
        assert all(r["misattributed"] > 0 for r in rows)
        assert [r["misattributed"] for r in rows] == sorted((r["misattributed"] for r in rows), reverse=True)


def test_citizen_and_explain(client: TestClient, runs: tuple[Path, Path]) -> None:
    listed = client.get("/api/runs/first/picks/listed?limit=1").json()["citizens"][0]["citizen"]
    row = client.get(f"/api/runs/first/citizens/{listed}").json()
    assert row["citizen"] == listed and row["listed"] is True
    t0 = time.perf_counter()
    x = client.get(f"/api/runs/first/citizens/{listed}/explain").json()
    first = time.perf_counter() - t0
    assert x["citizen"] == listed and x["run"] == "first"
    assert x["final"]["listed"] is True and x["listings"]
    assert x["counterfactual"]["without_misattribution"]
    assert x["scores"] and x["monthly"] and x["sanctions"]
    t0 = time.perf_counter()
    again = client.get(f"/api/runs/first/citizens/{listed}/explain")
    assert again.json() == x
    assert time.perf_counter() - t0 < max(first / 5, 0.05)  # cached, not replayed


def test_avatar_is_a_deterministic_svg(client: TestClient) -> None:
    one = client.get("/api/runs/first/citizens/7/avatar.svg")
    assert one.status_code == 200 and one.headers["content-type"].startswith("image/svg+xml")
    assert one.text.startswith("<svg") and "<rect" in one.text and "<image" not in one.text
    assert client.get("/api/runs/second/citizens/7/avatar.svg").text == one.text
    assert client.get("/api/runs/first/citizens/8/avatar.svg").text != one.text


def test_shame_board(client: TestClient, runs: tuple[Path, Path]) -> None:
    ev = pl.read_parquet(runs[0] / "events.parquet").filter((pl.col("kind") == "jaywalk") & pl.col("observed"))
    body = client.get("/api/runs/first/shame?limit=10").json()
    assert body["total"] == ev.height and body["innocent"] == int(ev["misattributed"].sum()) > 0
    days = [e["day"] for e in body["entries"]]
    assert len(days) == 10 and days == sorted(days, reverse=True)
    for e in body["entries"]:
        assert (e["actor"] is not None) == e["misattributed"]
    innocents = client.get("/api/runs/first/shame?innocent_only=true&limit=200").json()
    assert innocents["matching"] == body["innocent"]
    truth = {(r["day"], r["attributed_to"], r["citizen"]) for r in ev.filter(pl.col("misattributed")).to_dicts()}
    assert {(e["day"], e["citizen"], e["actor"]) for e in innocents["entries"]} <= truth
    assert all(e["citizen"] != e["actor"] for e in innocents["entries"])
    page2 = client.get("/api/runs/first/shame?limit=10&offset=10").json()["entries"]
    assert page2 and page2[0] != body["entries"][0]


def test_lists_match_daily_and_filters_partition(client: TestClient, runs: tuple[Path, Path]) -> None:
    whole = client.get("/api/runs/first/lists").json()
    daily = pl.read_parquet(runs[0] / "daily.parquet")
    assert whole["group"]["listed_now"] == daily["listed_now"].to_list()
    assert whole["group"]["entries"] == daily["listings"].to_list()
    services = {b["event"]: b for b in whole["bans"]["services"]}
    assert set(services) == {"trip", "loan_application"}
    assert len(services["trip"]["refused"]) == daily.height
    assert sum(services["trip"]["refused"]) == daily["trip_denied"].sum()  # the panel is everyone here
    assert services["trip"]["all_refused"] == daily["trip_denied"].sum()
    assert services["loan_application"]["rule"] == "consequences.loans.min_score"
    parts = [client.get(f"/api/runs/first/lists?minority={m}").json() for m in ("true", "false")]
    total = np.sum([p["group"]["listed_now"] for p in parts], axis=0)
    assert total.tolist() == whole["group"]["listed_now"]
    one = client.get("/api/runs/first/lists?region=3&urban=true").json()
    assert one["filter"] == {"region": 3, "minority": None, "urban": True}
    cz = pl.read_parquet(runs[0] / "citizens.parquet")
    assert one["group_citizens"] == cz.filter((pl.col("region") == 3) & pl.col("urban")).height
    assert len(whole["by_region"]) == len(whole["regions"])


def test_audit(client: TestClient) -> None:
    body = client.get("/api/runs/first/audit").json()
    if not body["available"]:
        assert body["message"] == "audit not available in this version"
        return
    assert body["findings"] and {"code", "title", "key_path", "detail", "law"} <= set(body["findings"][0])
    assert body["disparate_impact"] and "ratio_to_highest" in body["disparate_impact"][0]


def test_openapi_lists_every_endpoint(client: TestClient) -> None:
    paths = set(client.get("/openapi.json").json()["paths"])
    assert paths == {"/api/runs", "/api/runs/{run}", "/api/runs/{run}/charts", "/api/runs/{run}/picks/{kind}",
                     "/api/runs/{run}/citizens/{citizen}", "/api/runs/{run}/citizens/{citizen}/explain",
                     "/api/runs/{run}/citizens/{citizen}/avatar.svg", "/api/runs/{run}/shame",
                     "/api/runs/{run}/lists", "/api/runs/{run}/audit"}


@pytest.mark.parametrize("page", ["/", "/citizens", "/shame", "/lists", "/audit"])
def test_pages_are_static_html_with_local_assets(client: TestClient, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "http://" not in r.text and "https://" not in r.text
    for asset in ("/static/style.css", "/static/common.js"):
        assert asset in r.text and client.get(asset).status_code == 200


def test_plotly_is_served_locally(client: TestClient) -> None:
    r = client.get("/static/vendor/plotly.min.js")
    assert r.status_code == 200 and len(r.content) > 1_000_000 and b"plotly" in r.content[:2000].lower()


@pytest.mark.parametrize("url", [
    "/api/runs/nope", "/api/runs/nope/charts", "/api/runs/..%2F..%2Fetc", "/api/runs/..%2F..%2Fetc/charts",
    "/api/runs/%2E%2E/charts", "/api/runs/..%2Ffirst/lists", "/api/runs/first%2F..%2F..%2Fetc/shame",
    "/api/runs/first/citizens/4000", "/api/runs/first/citizens/-1", "/api/runs/first/citizens/abc",
    "/api/runs/first/citizens/1e3", "/api/runs/first/citizens/99999999999999999999999/explain",
    "/api/runs/first/citizens/-5/avatar.svg", "/api/runs/first/citizens/..%2F..%2Fetc%2Fpasswd/explain",
    "/api/runs/first/picks/everyone", "/api/runs/first/lists?region=99", "/api/nothing",
    "/static/..%2F..%2Fapp.py", "/static/../data.py", "/static/%2e%2e/%2e%2e/api.py",
])
def test_not_found_is_json_404(client: TestClient, url: str) -> None:
    r = client.get(url)
    assert r.status_code == 404, (url, r.status_code, r.text[:200])
    assert r.headers["content-type"].startswith("application/json")
    assert isinstance(r.json()["detail"], str)


def test_bad_query_is_422_not_500(client: TestClient) -> None:
    for url in ("/api/runs/first/shame?limit=100000", "/api/runs/first/shame?offset=-1",
                "/api/runs/first/lists?region=x", "/api/runs/first/lists?minority=perhaps"):
        assert client.get(url).status_code == 422, url


def test_read_only(client: TestClient, runs: tuple[Path, Path]) -> None:
    before = {p: p.stat().st_mtime_ns for p in runs[0].iterdir()}
    for url in ("/api/runs/first/charts", "/api/runs/first/lists", "/api/runs/first/audit"):
        client.get(url)
    assert client.post("/api/runs/first").status_code == 405
    assert {p: p.stat().st_mtime_ns for p in runs[0].iterdir()} == before


def test_bad_run_directories(tmp_path: Path, runs: tuple[Path, Path]) -> None:
    with pytest.raises(UserError, match="no such run directory"):
        create_app([tmp_path / "missing"])
    with pytest.raises(UserError, match="two runs are named"):
        twin = tmp_path / "x" / runs[0].name
        twin.parent.mkdir()
        sc.load(runs[0]).save(twin)
        create_app([runs[0], twin])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_load_on_loopback(runs: tuple[Path, Path]) -> None:
    """2,000 requests from 8 threads against a real uvicorn server on loopback: no errors, p95 printed."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(list(runs)), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    urls = ["/api/runs", "/api/runs/first", "/api/runs/second/shame?limit=48", "/api/runs/first/picks/listed",
            "/api/runs/first/citizens/{i}", "/api/runs/second/lists?minority=true", "/api/runs/first/audit",
            "/api/runs/second/charts", "/api/runs/first/citizens/{i}/avatar.svg"]
    with httpx.Client(base_url=base) as warm:  # first use builds the caches; timed requests then measure serving
        for u in urls:
            assert warm.get(u.format(i=1)).status_code == 200
    total, threads = 2_000, 8
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        with httpx.Client(base_url=base, timeout=10) as http:
            for k in range(w, total, threads):
                url = urls[k % len(urls)].format(i=k % N)
                t0 = time.perf_counter()
                try:
                    r = http.get(url)
                    ok = r.status_code == 200
                except httpx.HTTPError as exc:
                    ok, r = False, exc
                dt = time.perf_counter() - t0
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append(f"{url}: {r}")

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(worker, range(threads)))
    finally:
        server.should_exit = True
        thread.join(10)
    wall = time.perf_counter() - started
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    print(f"\nload: {len(latencies)} requests, {len(errors)} errors, {wall:.1f} s, {len(latencies) / wall:.0f} req/s, "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    assert len(latencies) == total
    assert not errors, errors[:5]
    assert wall < 30


# -- china: every system together ------------------------------------------------------------


@pytest.fixture(scope="module")
def china(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Path]:
    out = tmp_path_factory.mktemp("web-china") / "china"
    sc.run("china", citizens=20_000, days=60, seed=2, out=out)
    return TestClient(create_app([out])), out


def test_china_summary_and_charts(china: tuple[TestClient, Path]) -> None:
    client, _ = china
    s = client.get("/api/runs/china").json()
    keys = {t["key"] for t in s["headline"]}
    assert {"p_mean", "citizens.tencent", "citizens.rating", "daily.*_denied"} <= keys
    assert {x["key"] for x in s["systems"]} >= {"scoring.sesame", "scoring.tencent", "scoring.rating",
                                                 "records.court_list", "records.points", "consequences"}
    body = client.get("/api/runs/china/charts").json()
    charts = {c["id"]: c for g in body["groups"] for c in g["charts"]}
    for chart_id in ("score-distribution", "score-distribution-tencent", "score-distribution-rating", "grade-shares",
                     "list-size", "denials", "disparate-ratios", "misattribution"):
        assert charts[chart_id]["figure"]["data"], chart_id
    assert all(c["figure"] for c in charts.values())  # nothing drawn empty
    for o in body["omitted"]:  # what is left out is said, with why
        assert o["title"] and o["reason"]


def test_china_lists_bans_by_service(china: tuple[TestClient, Path]) -> None:
    client, out = china
    daily = pl.read_parquet(out / "daily.parquet")
    whole = client.get("/api/runs/china/lists").json()
    assert whole["court_list"] == "records.court_list"
    assert whole["region_names"]["0"] == "Beijing" and len(whole["by_region"]) == len(whole["regions"])
    assert whole["by_region"][0]["name"] == "Beijing"
    services = {b["event"]: b for b in whole["bans"]["services"]}
    assert set(services) == {c.removesuffix("_denied") for c in daily.columns if c.endswith("_denied")}
    for event, b in services.items():  # the panel is everyone here
        assert b["all_refused"] == daily[f"{event}_denied"].sum() == sum(b["refused"]) == b["refused_total"]
        assert b["all_requests"] == daily[event].sum()
    assert services["flight"]["rule"] == "consequences.flight.deny" and services["flight"]["formula"] == "listed"
    assert services["flight"]["agency"] == "Civil Aviation Administration" and services["flight"]["ban"]
    assert services["rental"]["rule"] == "consequences.rental.allow" and not services["rental"]["ban"]
    # the initial listing is counted apart from the entries
    assert whole["group"]["listed_at_start"] > 0 and whole["group"]["entries"][0] == 0
    groups = {(g["grouping"], g["group"]) for g in whole["by_group"]}
    assert {("hukou_urban", "urban hukou"), ("female", "women")} <= groups
    one = client.get("/api/runs/china/lists?region=18&minority=false").json()
    assert one["group_citizens"] < whole["group_citizens"]
    assert sum(b["refused_total"] for b in one["bans"]["services"]) <= sum(
        b["refused_total"] for b in whole["bans"]["services"])


@pytest.mark.parametrize("kind", ["penalised", "misattributed", "listed", "refused"])
def test_china_picks_shame_and_explain(china: tuple[TestClient, Path], kind: str) -> None:
    client, _ = china
    rows = client.get(f"/api/runs/china/picks/{kind}?limit=3").json()["citizens"]
    assert rows and all(r["summary"] and r["region_name"] for r in rows)
    if kind != "refused":
        return
    board = client.get("/api/runs/china/shame?limit=5").json()
    assert board["kinds"] == ["jaywalk", "fare_evasion"] and board["entries"][0]["region_name"]
    x = client.get(f"/api/runs/china/citizens/{rows[0]['citizen']}/explain").json()
    assert {s["system"] for s in x["scores"]} == {"sesame", "tencent"}
    assert {s["name"] for s in x["systems"]} == {"sesame", "tencent", "rating"}
    assert any(s["rule"].startswith("consequences.") for s in x["sanctions"])
    assert len(x["series"]["day"]) == 60 and x["counterfactual"]["factual"]
    audit = client.get("/api/runs/china/audit").json()
    assert audit["findings"]
    assert not any(r["group"].startswith("region ") for r in audit["disparate_impact"] if r["grouping"] == "region")
