"""The two Bot API calls the reports need, with retries and one-line errors.

``sendMessage`` and ``sendPhoto`` (multipart, the PNG as a file) on
``TELEGRAM_API_URL``. HTTP 5xx, timeouts and refused connections are
retried with exponential backoff; 429 after the wait the API asks for
(``parameters.retry_after`` in the body, or the ``Retry-After`` header).
A 4xx (bad token, unknown chat, a message too long) is not retried: it
stops with the API's own description. The token is part of every URL
(``/bot<token>/...``), so no URL is ever printed with it.
"""

from __future__ import annotations

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

from config import ReportSettings
from loaders.core.http import RETRY_AFTER_MAX_SECONDS, one_line, retry_after_seconds
from loaders.core.warehouse import LoaderError

CAPTION_LIMIT = 1024  # the Bot API's limit on a photo's caption
MESSAGE_LIMIT = 4096  # and on a message's text


class TelegramError(LoaderError):
    """A message could not be delivered; one line, the token masked."""


class _Transient(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.retry_after = None
        if response.status_code == 429:
            self.retry_after = _asked_wait(response)


def _asked_wait(response: httpx.Response) -> float | None:
    """The wait a 429 asks for: the body's ``parameters.retry_after``, else the header."""
    try:
        seconds = response.json().get("parameters", {}).get("retry_after")
    except (ValueError, AttributeError):
        seconds = None
    if isinstance(seconds, int | float) and not isinstance(seconds, bool):
        return min(max(float(seconds), 0.0), RETRY_AFTER_MAX_SECONDS)
    return retry_after_seconds(response.headers.get("Retry-After"))


def _description(response: httpx.Response) -> str:
    try:
        body = response.json()
        text = body.get("description") if isinstance(body, dict) else None
    except ValueError:
        text = None
    return one_line(str(text or response.text or "no description"), 160)


class TelegramClient:
    def __init__(self, settings: ReportSettings, sleep: Callable[[float], None] = time.sleep):
        if not settings.sends:
            raise TelegramError("TELEGRAM_BOT_TOKEN and TELEGRAM_CHAT_ID must both be set")
        self.settings = settings
        self.sleep = sleep
        self._backoff = wait_exponential(multiplier=settings.backoff_seconds, max=60)
        self.http = httpx.Client(timeout=settings.timeout_seconds)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TelegramClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """The API without the token, for messages."""
        return f"the Telegram Bot API at {self.settings.api_url}"

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Transient) and exc.retry_after is not None:
            return exc.retry_after
        return self._backoff(state)

    def call(self, method: str, **kwargs: Any) -> dict:
        """One Bot API method; returns its ``result``. Every error is one line without the token."""
        try:
            return self._call(method, **kwargs)
        except TelegramError as exc:
            raise TelegramError(
                str(exc).replace(self.settings.bot_token.get_secret_value(), "***")
            ) from None
        except httpx.InvalidURL as exc:  # TELEGRAM_API_URL (or the token) makes no URL
            reason = str(exc).replace(self.settings.bot_token.get_secret_value(), "***")
            raise TelegramError(f"{self.where} is not a usable URL: {reason}") from None

    def _call(self, method: str, **kwargs: Any) -> dict:
        s = self.settings
        url = f"{s.api_url}/bot{s.bot_token.get_secret_value()}/{method}"
        retrying = Retrying(
            stop=stop_after_attempt(s.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Transient | httpx.TransportError)),
            sleep=self.sleep,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    response = self.http.post(url, **kwargs)
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _Transient(response)
        except _Transient as exc:
            raise TelegramError(
                f"{self.where} answered {method} with HTTP {exc.response.status_code} "
                f"{s.attempts} time(s) in a row ({_description(exc.response)}); try again later"
            ) from None
        except httpx.TimeoutException:
            raise TelegramError(
                f"{self.where} did not answer {method} within {s.timeout_seconds:g}s, "
                f"{s.attempts} time(s) (TELEGRAM_TIMEOUT_SECONDS)"
            ) from None
        except httpx.TransportError as exc:
            # httpx's message can quote the URL, and so the token: never print it.
            reason = (
                one_line(str(exc).replace(s.bot_token.get_secret_value(), "***"))
                or type(exc).__name__
            )
            raise TelegramError(f"cannot reach {self.where}: {reason} (TELEGRAM_API_URL)") from None
        if response.status_code in (401, 404):
            raise TelegramError(
                f"{self.where} refused the bot token ({_description(response)}): "
                "check TELEGRAM_BOT_TOKEN"
            )
        if response.status_code >= 400:
            hint = " (check TELEGRAM_CHAT_ID)" if "chat" in _description(response).lower() else ""
            raise TelegramError(
                f"{self.where} refused {method} with HTTP {response.status_code}: "
                f"{_description(response)}{hint}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not body.get("ok"):
            raise TelegramError(
                f"{self.where} answered {method} without ok: {_description(response)}"
            )
        return body.get("result") or {}

    def send_message(self, text: str) -> dict:
        return self.call(
            "sendMessage",
            data={"chat_id": self.settings.chat_id, "text": text[:MESSAGE_LIMIT]},
        )

    def send_photo(self, png: bytes, caption: str, filename: str = "chart.png") -> dict:
        return self.call(
            "sendPhoto",
            data={"chat_id": self.settings.chat_id, "caption": caption[:CAPTION_LIMIT]},
            files={"photo": (filename, png, "image/png")},
        )
