"""A real headless Chromium driven over the DevTools protocol, for pages that render over a
websocket after load (Streamlit): Chromium's `--dump-dom` with a virtual-time budget returns
before a websocket app has drawn anything, so the tests poll the rendered text instead.

Debian's `chromium` only; skipped without it, except with CI=true, where it fails.
"""

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from credit_drift.stack import free_port  # noqa: F401 - the browser tests import it from here

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",  # the tests may run as root (CI containers)
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def chromium_or_skip() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        reason = "no chromium on PATH (Debian: apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{reason}; CI=true: the browser tests must run, not skip")
        pytest.skip(reason)
    return exe


class Browser:
    """One Chromium process with a fresh profile and one page target."""

    def __init__(self, exe: str, profile: Path, *, width: int = 1400, height: int = 1000):
        from websockets.sync.client import connect

        port = free_port()
        self.process = subprocess.Popen(
            [
                exe,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--remote-debugging-port={port}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        targets = None
        while time.monotonic() < deadline:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=2).json()
                if any(t["type"] == "page" for t in targets):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        else:
            self.close()
            raise RuntimeError("chromium did not open its DevTools endpoint within 60 s")
        page = next(t for t in targets if t["type"] == "page")
        self._ws = connect(page["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024)
        self._ids = itertools.count(1)
        self.send("Page.enable")
        self.send("Runtime.enable")
        # The page's own size (--window-size includes the invisible window's chrome).
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def send(self, method: str, **params):
        msg_id = next(self._ids)
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._ws.recv(timeout=120))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def text(self) -> str:
        result = self.send(
            "Runtime.evaluate", expression="document.body ? document.body.innerText : ''"
        )
        return result.get("result", {}).get("value", "")

    def count(self, selector: str) -> int:
        result = self.send(
            "Runtime.evaluate",
            expression=f"document.querySelectorAll({json.dumps(selector)}).length",
        )
        return int(result.get("result", {}).get("value", 0))

    def wait_for_text(self, *needles: str, timeout_s: float = 90.0, settle_s: float = 1.0) -> str:
        """The page's visible text once every needle is in it (and it stopped changing)."""
        deadline = time.monotonic() + timeout_s
        text = ""
        while time.monotonic() < deadline:
            text = self.text()
            if all(n in text for n in needles):
                time.sleep(settle_s)
                return self.text()
            time.sleep(0.5)
        raise AssertionError(
            f"never saw {needles!r} within {timeout_s:.0f} s; page text:\n{text[:3000]}"
        )

    def screenshot(self, path: Path) -> bytes:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            if getattr(self, "_ws", None) is not None:
                self._ws.close()
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
