"""A local stand-in for the Telegram Bot API, and marts with known values.

The real Bot API cannot be reached from these machines, so the tests run a
small HTTP server that records every request (path, headers, body) and
answers what the test tells it to; TELEGRAM_API_URL points at it. Everything
else is real: the warehouse, ClickHouse, the client's retries, the PNGs.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
import pytest

TOKEN = "123456:TEST-token-never-printed"
CHAT = "-1001234"


@dataclass
class Request:
    path: str
    content_type: str
    body: bytes

    @property
    def method(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def fields(self) -> dict[str, object]:
        """Form fields (urlencoded or multipart); a file part as (filename, type, bytes)."""
        if self.content_type.startswith("multipart/"):
            message = BytesParser(policy=HTTP).parsebytes(
                f"Content-Type: {self.content_type}\r\n\r\n".encode() + self.body
            )
            out: dict[str, object] = {}
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                payload = part.get_payload(decode=True)
                if part.get_filename():
                    out[name] = (part.get_filename(), part.get_content_type(), payload)
                else:
                    out[name] = payload.decode()
            return out
        from urllib.parse import parse_qs

        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture) -> Callable[..., CliResult]:
    """``python -m reports ARGS`` in this process (one real subprocess run is in test_daily)."""
    from reports.__main__ import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@dataclass
class BotApi:
    url: str
    requests: list[Request] = field(default_factory=list)
    # Answers to give, in order (status, body, headers); then 200 ok.
    script: list[tuple[int, dict, dict]] = field(default_factory=list)

    def answer_next(self, status: int, body: dict, headers: dict | None = None) -> None:
        self.script.append((status, body, headers or {}))


@pytest.fixture
def bot_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[BotApi]:
    """The recording Bot API on a free port; TELEGRAM_* point at it with a test token."""
    api = BotApi(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with lock:
                api.requests.append(Request(self.path, self.headers.get("Content-Type", ""), body))
                status, answer, headers = (
                    api.script.pop(0) if api.script else (200, {"ok": True, "result": {}}, {})
                )
            data = json.dumps(answer).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    for key, value in {
        "TELEGRAM_API_URL": api.url,
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": CHAT,
        "TELEGRAM_ATTEMPTS": "3",
        "TELEGRAM_BACKOFF_SECONDS": "0.01",
        "TELEGRAM_TIMEOUT_SECONDS": "2",
    }.items():
        monkeypatch.setenv(key, value)
    yield api
    server.shutdown()
    server.server_close()


DAY = dt.date(2026, 10, 8)
COLUMNS = (
    "event_date, dau_feed, dau_messenger, dau_both, views, likes, ctr, messages_sent,"
    " senders, receivers, sent_received_ratio"
)


def metrics_row(day: dt.date, k: int) -> tuple:
    """Day ``k``'s made-up metrics: different every day, so each change is checkable."""
    views, likes = 10_000 + 500 * k, 2_000 + 37 * k
    senders, receivers = 300 + 3 * k, 400 + k
    return (day, 1_000 + 10 * k, 300 + 3 * k, 100 + k, views, likes, likes / views,
            5_000 + 11 * k, senders, receivers, senders / receivers)  # fmt: skip


@pytest.fixture
def app_metrics(warehouse: str, local_dirs) -> dict[dt.date, tuple]:
    """``marts.app_metrics_daily`` with the 8 days up to DAY (the mart's columns, by hand)."""
    rows = {DAY - dt.timedelta(days=7 - k): None for k in range(8)}
    rows = {d: metrics_row(d, k) for k, d in enumerate(rows)}
    with psycopg.connect(warehouse) as conn:
        conn.execute(
            "create schema marts; create table marts.app_metrics_daily (event_date date,"
            " dau_feed bigint, dau_messenger bigint, dau_both bigint, views bigint, likes bigint,"
            " ctr double precision, messages_sent bigint, senders bigint, receivers bigint,"
            " sent_received_ratio double precision)"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"insert into marts.app_metrics_daily ({COLUMNS}) values "
                "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                list(rows.values()),
            )
    return rows
