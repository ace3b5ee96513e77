"""Where a report or an alert goes: the Telegram chat, or a folder on disk.

Both take the same thing (a text, a PNG, a caption for the PNG) and say
where it went, so the report and the alerts never care which one is
configured. ``name`` is the channel's identity in the delivery records: a
report delivered to disk is still sent once a chat is configured.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from config import ReportSettings

if TYPE_CHECKING:
    from reports.deliveries import Parts


class TelegramChannel:
    def __init__(self, settings: ReportSettings):
        # Imported here: httpx (and the CLI it imports) costs a quarter of a second
        # to a run that writes its reports to disk.
        from reports.telegram import TelegramClient

        self.client = TelegramClient(settings)
        self.name = f"telegram:{settings.chat_id}"

    def deliver(self, text: str, png: bytes, caption: str, folder: str, parts: Parts) -> str:
        """The text as a message, then the PNG with its caption (two Bot API calls).

        A part ``parts`` says went out already (a delivery that failed half-way)
        is not sent again; each part is recorded as soon as the API accepts it.
        """
        sent = parts.sent()
        if "text" not in sent:
            self.client.send_message(text)
            parts.record("text")
        if "chart" not in sent:
            self.client.send_photo(png, caption, filename=f"{Path(folder).name}.png")
            parts.record("chart")
        return f"Telegram chat {self.client.settings.chat_id}"

    def deliver_text(self, text: str, folder: str) -> str:
        """One message (a health alert): nothing to record part by part."""
        self.client.send_message(text)
        return f"Telegram chat {self.client.settings.chat_id}"

    def close(self) -> None:
        self.client.close()


class DiskChannel:
    name = "disk"

    def __init__(self, settings: ReportSettings):
        self.root = settings.output_dir

    def deliver(self, text: str, png: bytes, caption: str, folder: str, parts: Parts) -> str:
        """``<REPORT_DIR>/<folder>/message.txt`` and ``chart.png``; replaced whole on a rerun
        (so ``parts`` is not needed: writing a part twice repeats nothing)."""
        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "message.txt").write_text(f"{text}\n\n[chart] {caption}\n", encoding="utf-8")
        (target / "chart.png").write_bytes(png)
        return str(target)

    def deliver_text(self, text: str, folder: str) -> str:
        """``<REPORT_DIR>/<folder>/message.txt``."""
        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "message.txt").write_text(f"{text}\n", encoding="utf-8")
        return str(target)

    def close(self) -> None:
        pass


def open_channel(settings: ReportSettings) -> TelegramChannel | DiskChannel:
    return TelegramChannel(settings) if settings.sends else DiskChannel(settings)
