"""The protocol study behind bench/socket_client.py and bench/chat_pages.py: `python -m bench.chat record` starts the
app as the bench does, opens a conversation in chromium as a client, sends one message and prints every socket.io
frame and upload request. Rerun it after a Reflex upgrade and compare with what the simulated page sends.

Playwright and the services are imported here only when recording (see bench/helper_servers.py for why).
"""

from __future__ import annotations

import time

from bench.app_server import App, running_app
from bench.chat_pages import make_pairs


def record(app: App, pair: dict, log=print) -> None:
    """Open the conversation in chromium as the pair's client, send one message, print the frames."""
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            ctx = browser.new_context()
            ctx.add_cookies([{"name": "mp_session", "value": pair["client"]["token"], "url": app.url}])
            page = ctx.new_page()

            def on_ws(ws):
                log(f"WS open {ws.url}")
                ws.on("framesent", lambda f: log(f"  >> {str(f)[:3000]}"))
                ws.on("framereceived", lambda f: log(f"  << {str(f)[:3000]}"))

            page.on("websocket", on_ws)
            page.on("request", lambda r: "_upload" in r.url and log(
                f"HTTP {r.method} {r.url}\n  headers {r.headers}\n  body {r.post_data!r}"))
            page.on("response", lambda r: "_upload" in r.url and log(f"HTTP {r.status} {r.url}\n  {r.text()[:3000]}"))
            page.goto(f"{app.url}/messages/{pair['conversation']}")
            page.locator("#chat-body").wait_for(timeout=30_000)
            time.sleep(1)
            log("---- typing and sending")
            page.locator("#chat-body").fill("hello from the recording")
            page.locator("#chat-send").click()
            page.locator(".message-body", has_text="hello from the recording").wait_for(timeout=15_000)
            time.sleep(2)
            ctx.close()
        finally:
            browser.close()


def record_main(_arg: str = "") -> None:
    with running_app() as (app, settings, _, _):
        _, pairs = make_pairs(settings, 1)
        record(app, pairs[0])
