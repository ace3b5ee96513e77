"""The partner sales API, served locally over HTTP.

    POST /generate_report                  -> {"task_id"}
    GET  /get_report?task_id=...           -> {"status": "RUNNING"}, later "SUCCESS" + "report_id"
    GET  /get_increment?report_id&date=D   -> {"increment_id", "date", "files": [{name, url, rows}]}
    GET  /files/{increment_id}/{name}           -> the CSV file

Every call needs the ``X-API-KEY`` header (SALES_API_KEY). A report takes
SALES_API_REPORT_SECONDS to prepare. ``POST /_faults`` makes the server
misbehave on purpose (HTTP 5xx, rate limiting with Retry-After, slow answers,
slow reports, truncated files, bad values in chosen fields), so the loader's
fault handling is tested against a real server.

Run it with ``python -m datagen.sales_api_server --port 8090``.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import hmac
import io
import json
import time
import uuid
from dataclasses import dataclass, field

from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from config import DatagenSettings
from datagen.population import Population
from datagen.sales_increments import FILES, SalesDay
from loaders.sales_api.settings import SalesApiSettings


@dataclass
class Faults:
    fail_next: int = 0  # the next N requests answer fail_status
    fail_status: int = 503
    delay_next: int = 0  # the next N requests wait delay_seconds first
    delay_seconds: float = 0.0
    truncate_next: int = 0  # the next N file downloads are cut mid-line
    rate_limit_next: int = 0  # the next N requests answer 429 Too Many Requests
    retry_after: str | None = "1"  # their Retry-After header (None: no header)
    # Every download of a file gets these values: [{"file", "line", "column", "value"}]
    # (line 1 is the header). A lone surrogate in a value ("\udcff") is sent as
    # that raw byte (0xff), so files with invalid UTF-8 can be served too.
    bad_values: list[dict] = field(default_factory=list)


@dataclass
class ApiState:
    population: Population
    api_key: str
    report_seconds: float
    tasks: dict[str, float] = field(default_factory=dict)  # task_id -> ready at (monotonic)
    reports: dict[str, str] = field(default_factory=dict)  # task_id -> report_id
    increments: dict[str, dt.date] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)


def create_app(state: ApiState) -> FastAPI:
    app = FastAPI(title="Partner sales API (local)", docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def misbehave(request: Request, call_next) -> Response:
        if request.url.path in ("/health", "/_faults"):
            return await call_next(request)
        f = state.faults
        if f.delay_next > 0:
            f.delay_next -= 1
            await asyncio.sleep(f.delay_seconds)
        if f.fail_next > 0:
            f.fail_next -= 1
            return JSONResponse({"detail": "injected failure"}, status_code=f.fail_status)
        if f.rate_limit_next > 0:
            f.rate_limit_next -= 1
            headers = {"Retry-After": f.retry_after} if f.retry_after is not None else None
            return JSONResponse({"detail": "rate limited"}, status_code=429, headers=headers)
        return await call_next(request)

    def check_key(key: str | None) -> None:
        # Constant time: the answer must not leak how much of a guessed key matched.
        if key is None or not hmac.compare_digest(key.encode(), state.api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-KEY")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.post("/_faults")
    async def set_faults(request: Request, x_api_key: str | None = Header(None)) -> Response:
        check_key(x_api_key)
        body = await request.json()
        state.faults = Faults(**body.get("faults", {}))
        if "report_seconds" in body:
            state.report_seconds = float(body["report_seconds"])
        # ASCII JSON: bad values may hold lone surrogates, which UTF-8 cannot encode.
        answer = {"faults": state.faults.__dict__, "report_seconds": state.report_seconds}
        return Response(json.dumps(answer), media_type="application/json")

    @app.post("/generate_report")
    async def generate_report(x_api_key: str | None = Header(None)) -> dict:
        check_key(x_api_key)
        task_id = uuid.uuid4().hex
        state.tasks[task_id] = time.monotonic() + state.report_seconds
        return {"task_id": task_id}

    @app.get("/get_report")
    async def get_report(task_id: str, x_api_key: str | None = Header(None)) -> dict:
        check_key(x_api_key)
        if task_id not in state.tasks:
            raise HTTPException(status_code=404, detail=f"unknown task_id {task_id}")
        if time.monotonic() < state.tasks[task_id]:
            return {"task_id": task_id, "status": "RUNNING"}
        report_id = state.reports.setdefault(task_id, uuid.uuid4().hex)
        return {"task_id": task_id, "status": "SUCCESS", "report_id": report_id}

    @app.get("/get_increment")
    async def get_increment(
        report_id: str, date: str, x_api_key: str | None = Header(None)
    ) -> dict:
        check_key(x_api_key)
        if report_id not in state.reports.values():
            raise HTTPException(status_code=404, detail=f"unknown report_id {report_id}")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            raise HTTPException(
                status_code=400, detail=f"date {date!r} is not YYYY-MM-DD"
            ) from None
        if day < state.population.start_date:
            raise HTTPException(status_code=404, detail=f"no increment for {day}: before the start")
        increment_id = uuid.uuid4().hex
        state.increments[increment_id] = day
        files = SalesDay(state.population, day).files()
        return {
            "increment_id": increment_id,
            "date": day.isoformat(),
            "files": [
                {
                    "name": name,
                    "url": f"/files/{increment_id}/{name}",
                    "rows": files[name].count("\n") - 1,
                }
                for name in FILES
            ],
        }

    @app.get("/files/{increment_id}/{name}")
    async def get_file(
        increment_id: str, name: str, x_api_key: str | None = Header(None)
    ) -> Response:
        check_key(x_api_key)
        if increment_id not in state.increments or name not in FILES:
            raise HTTPException(status_code=404, detail="no such file")
        body = SalesDay(state.population, state.increments[increment_id]).files()[name]
        body = with_bad_values(body, [b for b in state.faults.bad_values if b["file"] == name])
        data = body.encode("utf-8", "surrogateescape")
        if state.faults.truncate_next > 0:
            state.faults.truncate_next -= 1
            data = data[: int(len(data) * 0.6)]  # cut mid-line, like a broken transfer
        return Response(data, media_type="text/csv")

    return app


def with_bad_values(body: str, bad: list[dict]) -> str:
    """``body`` with the given fields replaced (same number of lines, as announced)."""
    if not bad:
        return body
    lines = body.removesuffix("\n").split("\n")
    header = next(csv.reader([lines[0]]))
    for item in bad:
        number = int(item["line"])
        fields = next(csv.reader([lines[number - 1]]))
        fields[header.index(item["column"])] = item["value"]
        out = io.StringIO()
        csv.writer(out, lineterminator="").writerow(fields)
        lines[number - 1] = out.getvalue()
    return "".join(f"{line}\n" for line in lines)


def app_from_env() -> FastAPI:
    gen, api = DatagenSettings.from_env(), SalesApiSettings.from_env()
    return create_app(
        ApiState(
            population=Population(gen.seed, gen.scale, dt.date.fromisoformat(gen.start_date)),
            api_key=api.api_key.get_secret_value(),
            report_seconds=api.report_seconds,
        )
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="datagen.sales_api_server", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    uvicorn.run(app_from_env(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
