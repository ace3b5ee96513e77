"""Where a report or an alert goes: the Telegram chat, or a folder on disk.

Both take the same thing (a text, a PNG, a caption for the PNG) and say
where it went, so the report and the alerts never care which one is
configured. ``name`` is the channel's identity in the delivery records: a
report delivered to disk is still sent once a chat is configured.
"""

from __future__ import annotations

from pathlib import Path

from config import ReportSettings
from reports.telegram import TelegramClient


class TelegramChannel:
    def __init__(self, settings: ReportSettings):
        self.client = TelegramClient(settings)
        self.name = f"telegram:{settings.chat_id}"

    def deliver(self, text: str, png: bytes, caption: str, folder: str) -> str:
        """The text as a message, then the PNG with its caption (two Bot API calls)."""
        self.client.send_message(text)
        self.client.send_photo(png, caption, filename=f"{Path(folder).name}.png")
        return f"Telegram chat {self.client.settings.chat_id}"

    def close(self) -> None:
        self.client.close()


class DiskChannel:
    name = "disk"

    def __init__(self, settings: ReportSettings):
        self.root = settings.output_dir

    def deliver(self, text: str, png: bytes, caption: str, folder: str) -> str:
        """``<REPORT_DIR>/<folder>/message.txt`` and ``chart.png``; replaced whole on a rerun."""
        target = self.root / folder
        target.mkdir(parents=True, exist_ok=True)
        (target / "message.txt").write_text(f"{text}\n\n[chart] {caption}\n", encoding="utf-8")
        (target / "chart.png").write_bytes(png)
        return str(target)

    def close(self) -> None:
        pass


def open_channel(settings: ReportSettings) -> TelegramChannel | DiskChannel:
    return TelegramChannel(settings) if settings.sends else DiskChannel(settings)
