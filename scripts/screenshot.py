"""Take screenshots of app pages in Debian's chromium: `python scripts/screenshot.py URL OUT.png [WIDTH]`.

Optional login first: SHOT_EMAIL / SHOT_PASSWORD environment variables.
"""

from __future__ import annotations

import os
import sys

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]


def main() -> None:
    url, out = sys.argv[1], sys.argv[2]
    width = int(sys.argv[3]) if len(sys.argv) > 3 else 1280
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        if os.environ.get("SHOT_EMAIL"):
            base = url.split("/", 3)
            page.goto(f"{base[0]}//{base[2]}/login")
            page.fill("#email", os.environ["SHOT_EMAIL"])
            page.fill("#password", os.environ["SHOT_PASSWORD"])
            page.click("#login-submit")
            page.wait_for_url(lambda u: "/login" not in u, timeout=15000)
        page.goto(url)
        page.wait_for_timeout(1500)
        page.screenshot(path=out, full_page=True)
        browser.close()


if __name__ == "__main__":
    main()
