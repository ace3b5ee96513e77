"""The partner's HTTP protocol: report -> poll -> increment, with retries and one-line errors.

HTTP 5xx answers, timeouts and refused connections are retried with exponential
backoff. HTTP 429 (rate limited) is retried too, after the wait the server asks
for in ``Retry-After`` (capped, so a server cannot park the loader for hours),
or with the same backoff when it does not say. Anything that still fails stops
with one line naming the URL, never a traceback and never the API key (it
travels in a header, and LoaderError masks it anyway).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from config import advice, mask_uri_password
from loaders.core.http import RETRY_AFTER_MAX_SECONDS, one_line, retry_after_seconds
from loaders.core.warehouse import LoaderError
from loaders.sales_api.settings import SalesApiSettings


class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class _RateLimited(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__("HTTP 429")
        self.response = response
        self.retry_after = retry_after_seconds(response.headers.get("Retry-After"))


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _ServerError | _RateLimited | httpx.TransportError)


class SalesApiClient:
    def __init__(self, settings: SalesApiSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.sleep = sleep
        self._backoff = wait_exponential(multiplier=settings.backoff_seconds, max=60)
        # No default headers: the key goes only to the API's own origin (a file
        # URL the API hands out may point at other storage).
        self.http = httpx.Client(base_url=settings.url, timeout=settings.timeout_seconds)
        self._origin = httpx.URL(settings.url.rstrip("/") + "/")

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SalesApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: what a 429 asks for, else exponential backoff."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RateLimited) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def url_of(self, path: str) -> httpx.URL:
        """``path`` (relative to SALES_API_URL, or absolute) as a full URL."""
        return self.http.build_request("GET", path).url

    def _headers(self, url: httpx.URL) -> dict[str, str]:
        same_origin = (url.scheme, url.host, url.port) == (
            self._origin.scheme,
            self._origin.host,
            self._origin.port,
        )
        return {"X-API-KEY": self.settings.api_key.get_secret_value()} if same_origin else {}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One API call; 5xx, 429, timeouts and refused connections are retried."""
        s = self.settings
        target = self.url_of(path)
        url = mask_uri_password(str(target.copy_with(query=None)))
        kwargs["headers"] = {**self._headers(target), **kwargs.get("headers", {})}
        retrying = Retrying(
            stop=stop_after_attempt(s.attempts),
            wait=self._wait,
            retry=retry_if_exception(_transient),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.http.request(method, path, **kwargs)
                    if response.status_code >= 500:
                        raise _ServerError(response)
                    if response.status_code == 429:
                        raise _RateLimited(response)
        except _ServerError as exc:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {exc.response.status_code} "
                f"{s.attempts} time(s) in a row; try again later"
            ) from None
        except _RateLimited as exc:
            asked = exc.response.headers.get("Retry-After")
            raise LoaderError(
                f"the sales API at {url} rate-limited the loader (HTTP 429) {s.attempts} "
                f"time(s) in a row (Retry-After: {one_line(asked or 'not given', 40)}, "
                f"waits capped at {RETRY_AFTER_MAX_SECONDS:g}s); try again later"
            ) from None
        except httpx.TimeoutException:
            raise LoaderError(
                f"the sales API at {url} did not answer within {s.timeout_seconds:g}s, "
                f"{s.attempts} time(s) (SALES_API_TIMEOUT_SECONDS)"
            ) from None
        except httpx.TransportError as exc:
            reason = one_line(str(exc)) or type(exc).__name__
            raise LoaderError(
                f"cannot reach the sales API at {url}: {reason} "
                f"({advice('sales_api', 'SALES_API_URL')})"
            ) from None
        if response.status_code == 401:
            raise LoaderError(f"the sales API at {url} refused the API key: check SALES_API_KEY")
        if response.status_code >= 400:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {response.status_code}: "
                f"{one_line(response.text)}"
            )
        return response

    def call_json(self, method: str, path: str, *keys: str, **kwargs: Any) -> dict:
        """An API call whose answer must be a JSON object holding ``keys``."""
        response = self.call(method, path, **kwargs)
        url = mask_uri_password(str(self.url_of(path).copy_with(query=None)))
        try:
            body = response.json()
        except ValueError:
            raise LoaderError(
                f"the sales API at {url} answered something that is not JSON: "
                f"{one_line(response.text, 100)!r}"
            ) from None
        missing = [k for k in keys if not isinstance(body, dict) or k not in body]
        if missing:
            raise LoaderError(
                f"the sales API at {url} answered without {', '.join(missing)}: "
                f"{one_line(response.text, 100)!r}"
            )
        return body

    # -- the protocol --------------------------------------------------------------
    def generate_report(self) -> str:
        return str(self.call_json("POST", "/generate_report", "task_id")["task_id"])

    def report_status(self, task_id: str) -> dict:
        """One status check: ``{"status": "RUNNING"}`` or ``{"status": "SUCCESS", "report_id"}``."""
        return self.call_json("GET", "/get_report", "status", params={"task_id": task_id})

    def wait_for_report(self, task_id: str) -> str:
        """Poll until the report is ready; a report not ready by the deadline is an error."""
        deadline = time.monotonic() + self.settings.deadline_seconds
        while True:
            body = self.report_status(task_id)
            if body.get("status") == "SUCCESS":
                if not body.get("report_id"):
                    raise LoaderError(
                        f"the sales API says report {task_id} is ready but gives no report_id"
                    )
                return str(body["report_id"])
            if time.monotonic() >= deadline:
                raise LoaderError(
                    f"the sales API report {task_id} was not ready after "
                    f"{self.settings.deadline_seconds:g}s (status {body.get('status')!r}; "
                    "SALES_API_DEADLINE_SECONDS)"
                )
            self.sleep(self.settings.poll_seconds)

    def get_increment(self, report_id: str, day: dt.date) -> dict:
        params = {"report_id": report_id, "date": day.isoformat()}
        return self.call_json("GET", "/get_increment", "files", params=params)
