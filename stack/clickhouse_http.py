"""The embedded ClickHouse: the ClickHouse HTTP interface over one in-process chdb session.

No package serves chdb (the ClickHouse engine as a library) over HTTP and no
modern clickhouse-server installs here, so this is the one server the project
writes itself, for what clickhouse-connect and dbt-clickhouse use:

- the query is the ``query`` URL parameter, a newline, then the body (or the
  multipart form fields); after ``INSERT ... FORMAT F`` comes raw data, which
  goes to chdb's inserter as it is, never through the SQL parser;
- request bodies plain or chunked, with ``Content-Encoding`` lz4 (LZ4 frames,
  as ClickHouse and clickhouse-connect mean it), zstd, gzip or deflate;
- URL parameters ``database``, ``default_format``, ``query_id`` (echoed),
  ``session_id``, ``param_<name>`` (server-side binding), ``user``/``password``,
  and every name in ``system.settings`` (``mutations_sync``, ...), applied with
  ``SET`` around the query; a ``SET`` statement lasts for its session only;
- ``X-ClickHouse-Format/-Timezone/-Summary/-Query-Id/-Server-Display-Name``,
  ``GET /ping``, and errors as ``Code: N. DB::Exception: ...`` with
  ``X-ClickHouse-Exception-Code`` and real ClickHouse's HTTP status;
- when ``CLICKHOUSE_PASSWORD`` is set: that user and password, by Basic auth,
  ``X-ClickHouse-User``/``-Key`` headers or URL parameters (else code 516).

Deliberately not: compressed responses (answered plain, which clients accept;
this is loopback), ClickHouse's own block compression (``compress``/
``decompress=1``), ``client_protocol_version`` (clients fall back to 0),
external data, progress headers, temporary tables or ``USE`` per session,
streaming of results (each is built in memory), TLS. Unknown URL parameters
are ignored rather than refused.

Only one process can open a chdb data dir, so this server is its owner, and its
one chdb session is one query context (current database, settings): queries
run one at a time under a lock.
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import gzip
import hmac
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import lz4.frame
from backports import zstd

from loaders.events.settings import ClickHouseSettings

# Parameters that are settings but shape only the HTTP exchange (or, database, are applied by USE).
TRANSPORT_PARAMS = frozenset(
    ("database", "default_format", "enable_http_compression", "send_progress_in_http_headers",
     "http_headers_progress_interval_ms", "cancel_http_readonly_queries_on_client_close",
     "wait_end_of_query")
)  # fmt: skip
# ClickHouse's exceptionCodeToHTTPStatus for the codes clients meet here; the rest are 500.
HTTP_STATUS = {516: 403, 27: 400, 36: 400, 62: 400, 46: 404, 47: 404, 60: 404, 73: 404, 81: 404}
AUTHENTICATION_FAILED, BAD_ARGUMENTS, UNKNOWN_FORMAT = 516, 36, 73
CHDB_PYTHON_FORMATS = ("dataframe", "datastore", "arrowtable", "debug")  # not wire formats

# An INSERT's data starts after ``FORMAT <name>``: quoted names are skipped, and
# VALUES/SELECT/WITH first mean the whole statement is SQL.
_INSERT = re.compile(rb"\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*INSERT\s", re.I | re.S)
_INSERT_TOKEN = re.compile(
    rb"`(?:[^`\\]|\\.)*`|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    rb"|\b(FORMAT)\s+(\w+)|\b(VALUES|SELECT|WITH)\b",
    re.I | re.S,
)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.I)
_SET = re.compile(r"\bSET\b", re.I)
_CODE = re.compile(r"Code: (\d+)\. (.*)", re.S)


class ClickHouseError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    @classmethod
    def of(cls, exc: Exception) -> ClickHouseError:
        """chdb's errors read ``Code: N. DB::Exception: ...``, sometimes after a prefix."""
        found = _CODE.search(str(exc))
        if found:
            return cls(int(found[1]), found[2].strip())
        return cls(1001, f"DB::Exception: {exc}")  # STD_EXCEPTION


def decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "lz4":  # clickhouse-connect sends one LZ4 frame per block
        out = bytearray()
        while body:
            frame = lz4.frame.LZ4FrameDecompressor()
            out += frame.decompress(body)
            body = frame.unused_data
        return bytes(out)
    if encoding == "zstd":
        return zstd.decompress(body)  # every concatenated frame
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    raise ClickHouseError(BAD_ARGUMENTS, f"DB::Exception: Unknown Content-Encoding {encoding!r}")


def split_insert(query: bytes) -> tuple[str, str, bytes] | None:
    """``(INSERT head, format, data)`` when the query is an INSERT followed by raw data."""
    start = _INSERT.match(query)
    if not start:
        return None
    for token in _INSERT_TOKEN.finditer(query, start.end()):
        if token[3]:
            return None
        if token[1]:  # as ClickHouse: skip spaces and tabs, then one newline
            data = token.end()
            while query[data : data + 1] in (b" ", b"\t", b"\f"):
                data += 1
            data += query.startswith(b"\r", data)
            data += query.startswith(b"\n", data)
            return query[: token.start()].decode(), token[2].decode(), query[data:]
    return None


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """The one chdb session, with each request's database and settings put around its query."""

    def __init__(self, path: str) -> None:
        from chdb.session import Session  # 0.8 s, so only once the port is ours

        self.session = Session(path)
        self.lock = threading.Lock()
        self.baseline = self._changed()  # chdb starts with a few settings changed
        self.known = frozenset(self._rows("SELECT name FROM system.settings"))
        self.applied: dict[str, str | None] = {}  # set apart from the baseline (None: reset)
        self.sessions: dict[str, dict[str, str]] = {}  # session_id -> its SET statements
        self.version, self.timezone = self._rows("SELECT version(), timezone()")[0].split("\t")

    def _rows(self, sql: str) -> list[str]:
        return self.session.query(sql, "TSVRaw").bytes().decode().splitlines()

    def _changed(self) -> dict[str, str]:
        rows = self._rows("SELECT name, value FROM system.settings WHERE changed")
        return dict(row.split("\t", 1) for row in rows if not row.startswith("database\t"))

    def _apply(self, wanted: dict[str, str]) -> None:
        """Baseline plus ``wanted``: only what differs from the last request is SET."""
        sets = [f"{k} = {_literal(v)}" for k, v in wanted.items() if self.applied.get(k) != v]
        sets += [
            f"{k} = {_literal(self.baseline[k]) if k in self.baseline else 'DEFAULT'}"
            for k in self.applied.keys() - wanted.keys()
        ]
        if sets:
            try:
                self.session.query("SET " + ", ".join(sets))
            except Exception:
                self.applied = self._differing()
                raise
            self.applied = dict(wanted)

    def _differing(self) -> dict[str, str | None]:
        """What is set apart from the baseline now, read from the engine."""
        changed = self._changed()
        reset = dict.fromkeys(self.baseline.keys() - changed.keys())
        return {k: v for k, v in changed.items() if self.baseline.get(k) != v} | reset

    def _after_set(self, session_id: str, settings: dict[str, str]) -> None:
        """The query changed settings itself: keep them for its session, undo them for others."""
        self.applied = self._differing()
        if session_id:
            self.sessions.pop(session_id, None)  # most recent last; the oldest go first
            self.sessions[session_id] = {
                k: v for k, v in self.applied.items() if k not in settings and v is not None
            }
            while len(self.sessions) > 1000:
                del self.sessions[next(iter(self.sessions))]
        self._apply(settings)

    def execute(
        self, query: bytes, database: str, settings: dict[str, str], params: dict[str, str],
        fmt: str, session_id: str,
    ) -> tuple[bytes, str, dict[str, str]]:  # fmt: skip
        """Run one query; return its output, output format and X-ClickHouse-Summary."""
        if not query.strip():
            raise ClickHouseError(62, "DB::Exception: Empty query. (SYNTAX_ERROR)")
        insert = split_insert(query)
        text = "" if insert else query.decode()
        if fmt.lower() in CHDB_PYTHON_FORMATS:
            raise ClickHouseError(UNKNOWN_FORMAT, f"DB::Exception: Unknown format {fmt}")
        with self.lock:
            try:
                self.session.query(f"USE `{database.replace('`', '``')}`")
                self._apply({**self.sessions.get(session_id, {}), **settings})
                if insert:
                    with self.session.send_insert(insert[0], insert[1]) as inserter:
                        inserter.append(insert[2])
                        done = inserter.finish()
                    out, counts = (
                        b"",
                        (0, 0, 0, done.rows_written, done.bytes_written, done.elapsed),
                    )
                else:
                    try:
                        result = self.session.query(text, fmt, params=params)
                    finally:
                        if _SET.search(text):
                            self._after_set(session_id, settings)
                    out = result.bytes()
                    counts = (result.storage_rows_read(), result.storage_bytes_read(),
                              result.rows_read(), result.rows_written(), result.bytes_written(),
                              result.elapsed())  # fmt: skip
            except Exception as exc:
                raise ClickHouseError.of(exc) from None
        names = ("read_rows", "read_bytes", "result_rows", "written_rows", "written_bytes")
        summary = dict(zip(names, counts, strict=False))
        summary |= {"result_bytes": len(out), "elapsed_ns": int(counts[5] * 1e9)}
        found = _TRAILING_FORMAT.search(text)
        return out, found[1] if found else fmt, {k: str(v) for k, v in summary.items()}

    def close(self) -> None:
        with self.lock:
            self.session.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients pool their connections
    server: Server

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/ping" or (url.path == "/" and "query=" not in url.query):
            self._reply(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
        else:
            self._query(b"")

    def do_POST(self) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()  # clickhouse-connect streams its inserts
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._query(bytes(body))

    def _query(self, body: bytes) -> None:
        started, engine = time.monotonic(), self.server.engine
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        query_id = params.get("query_id") or str(uuid.uuid4())
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": engine.timezone,
            "X-ClickHouse-Server-Display-Name": socket.gethostname(),
        }
        query = b""
        try:
            self._authenticate(params)
            body = decompress(body, self.headers.get("Content-Encoding", ""))
            if self.headers.get_content_type() == "multipart/form-data":
                params |= self._form(body)
                body = b""
            query = params.get("query", "").encode()
            query = query + b"\n" + body if query and body else query or body
            out, fmt, summary = engine.execute(
                query,
                database=params.get("database") or "default",
                settings={k: v for k, v in params.items()
                          if k in engine.known and k not in TRANSPORT_PARAMS},
                params={k[6:]: v for k, v in params.items() if k.startswith("param_")},
                fmt=params.get("default_format") or "TabSeparated",
                session_id=params.get("session_id", ""),
            )  # fmt: skip
            text = fmt.startswith(("TSV", "TabSeparated", "CSV", "JSON", "Pretty"))
            status = 200
            headers |= {
                "X-ClickHouse-Format": fmt,
                "X-ClickHouse-Summary": json.dumps(summary),
                "Content-Type": "text/plain; charset=UTF-8" if text else "application/octet-stream",
            }
        except Exception as exc:  # a malformed request too: the client gets a ClickHouse error
            error = exc if isinstance(exc, ClickHouseError) else ClickHouseError.of(exc)
            status = HTTP_STATUS.get(error.code, 500)
            out = f"Code: {error.code}. {error.message} (version {engine.version})\n".encode()
            headers["X-ClickHouse-Exception-Code"] = str(error.code)
            headers["Content-Type"] = "text/plain; charset=UTF-8"
        self._reply(status, out, headers)
        head = split_insert(query)  # never log an insert's data
        shown = f"{head[0]} FORMAT {head[1]}" if head else query[:500].decode(errors="replace")
        sys.stderr.write(
            f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {status} {time.monotonic() - started:.3f}s"
            f" {query_id} {' '.join(shown.split())[:300]}\n"
        )

    def _form(self, body: bytes) -> dict[str, str]:
        """The fields of a multipart form (clickhouse-connect sends long parameters so)."""
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        form = email.message_from_bytes(head + body, policy=email.policy.HTTP)
        return {
            part.get_param("name", header="content-disposition"): part.get_content()
            for part in form.iter_parts()
        }

    def _authenticate(self, params: dict[str, str]) -> None:
        if not self.server.password:
            return  # no password configured, as ClickHouse's default user out of the box
        user = self.headers.get("X-ClickHouse-User") or params.get("user", "default")
        password = self.headers.get("X-ClickHouse-Key") or params.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if user != self.server.user or not hmac.compare_digest(password, self.server.password):
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"DB::Exception: {user}: Authentication failed: password is incorrect, or there "
                "is no user with such name. (AUTHENTICATION_FAILED)",
            )

    def _reply(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # _query writes one line per query


class Server(ThreadingHTTPServer):
    daemon_threads = True
    engine: Engine
    user: str
    password: str


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18123)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument(
        "--config-file", help="a ClickHouse server config (clusters, macros) chdb starts with"
    )
    args = parser.parse_args(argv)
    os.environ["TZ"] = "UTC"  # the engine's time zone is the process's; a server's is UTC
    time.tzset()
    try:  # bind first: a taken port fails fast, before chdb loads
        server = Server((args.host, args.port), Handler)
    except OSError as exc:
        sys.exit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
    try:
        path = args.data_dir
        if args.config_file:  # chdb passes URL parameters on as the engine's start-up options
            path += f"?config-file={args.config_file}"
        server.engine = Engine(path)
    except Exception as exc:  # chdb prints the cause (e.g. "Cannot lock file") just before
        sys.exit(f"cannot open the data dir {args.data_dir} (another server on it?): {exc}")
    settings = ClickHouseSettings.from_env()
    server.user, server.password = settings.user, settings.password.get_secret_value()

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print(
        f"ClickHouse {server.engine.version} (chdb) on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.engine.close()  # first: once the port is closed, the data dir is free
        server.server_close()


if __name__ == "__main__":
    main()
