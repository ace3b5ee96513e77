"""The partner's HTTP protocol: report -> poll -> increment, with retries and one-line errors.

HTTP 5xx answers and timeouts are retried with exponential backoff; anything
that still fails stops with one line naming the URL.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from config import SalesApiSettings, advice
from loaders.core.warehouse import LoaderError


class _ServerError(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, _ServerError | httpx.TimeoutException | httpx.TransportError)


class SalesApiClient:
    def __init__(self, settings: SalesApiSettings, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.sleep = sleep
        self.http = httpx.Client(
            base_url=settings.url,
            headers={"X-API-KEY": settings.api_key},
            timeout=settings.timeout_seconds,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SalesApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One API call; 5xx answers, timeouts and refused connections are retried."""
        s = self.settings
        url = f"{s.url}{path}"
        retrying = Retrying(
            stop=stop_after_attempt(s.attempts),
            wait=wait_exponential(multiplier=s.backoff_seconds, max=60),
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
        except _ServerError as exc:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {exc.response.status_code} "
                f"{s.attempts} time(s) in a row; try again later"
            ) from None
        except httpx.TimeoutException:
            raise LoaderError(
                f"the sales API at {url} did not answer within {s.timeout_seconds:g}s, "
                f"{s.attempts} time(s) (SALES_API_TIMEOUT_SECONDS)"
            ) from None
        except httpx.TransportError as exc:
            raise LoaderError(
                f"cannot reach the sales API at {url}: {exc or type(exc).__name__} "
                f"({advice('sales_api', 'SALES_API_URL')})"
            ) from None
        if response.status_code == 401:
            raise LoaderError(f"the sales API at {url} refused the API key: check SALES_API_KEY")
        if response.status_code >= 400:
            raise LoaderError(
                f"the sales API at {url} answered HTTP {response.status_code}: "
                f"{response.text[:200]}"
            )
        return response

    # -- the protocol --------------------------------------------------------------
    def generate_report(self) -> str:
        return self.call("POST", "/generate_report").json()["task_id"]

    def report_status(self, task_id: str) -> dict:
        """One status check: ``{"status": "RUNNING"}`` or ``{"status": "SUCCESS", "report_id"}``."""
        return self.call("GET", "/get_report", params={"task_id": task_id}).json()

    def wait_for_report(self, task_id: str) -> str:
        """Poll until the report is ready; a report not ready by the deadline is an error."""
        deadline = time.monotonic() + self.settings.deadline_seconds
        while True:
            body = self.report_status(task_id)
            if body.get("status") == "SUCCESS":
                return body["report_id"]
            if time.monotonic() >= deadline:
                raise LoaderError(
                    f"the sales API report {task_id} was not ready after "
                    f"{self.settings.deadline_seconds:g}s (status {body.get('status')!r}; "
                    "SALES_API_DEADLINE_SECONDS)"
                )
            self.sleep(self.settings.poll_seconds)

    def get_increment(self, report_id: str, day: dt.date) -> dict:
        params = {"report_id": report_id, "date": day.isoformat()}
        return self.call("GET", "/get_increment", params=params).json()
