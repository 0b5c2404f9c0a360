"""A worker in its own process, so a test can SIGKILL it mid-activity.

Usage: python generation_worker.py ADDRESS SETTINGS_JSON (runs until killed).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pkgbuilder.config import BuildSettings
from pkgbuilder.runtime.client import connect
from pkgbuilder.runtime.worker import running_workers


async def main(address: str, settings_file: str) -> None:
    settings = BuildSettings.model_validate_json(Path(settings_file).read_text())
    client = await connect(address)
    async with running_workers(client, settings):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
