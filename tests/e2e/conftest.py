"""The real app (`reflex run --env prod`) on PostgreSQL, driven by Playwright in Debian's chromium."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from backend.config import PROJECT_ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"]
PASSWORD = "demo-password-1"
expect.set_options(timeout=20_000)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningApp:
    """`reflex run --env prod` in its own process group, restartable."""

    def __init__(self, env: dict, port: int, log: Path, cwd: Path = PROJECT_ROOT):
        self.env, self.port, self.log, self.cwd = env, port, log, cwd
        self.proc: subprocess.Popen | None = None

    def url(self, path: str = "/", tenant: str | None = None) -> str:
        host = f"{tenant}.localhost" if tenant else "localhost"
        return f"http://{host}:{self.port}{path}"

    def at(self, path: str, tenant: str | None = None) -> re.Pattern:
        """Matches the page URL for `path`, with or without the trailing slash static hosting adds."""
        return re.compile(re.escape(self.url(path.rstrip("/"), tenant)) + r"/?(\?.*)?$")

    def start(self, timeout: float = 300) -> None:
        reflex = str(Path(sys.executable).parent / "reflex")
        self.proc = subprocess.Popen(
            [reflex, "run", "--env", "prod", "--single-port", "--frontend-port", str(self.port),
             "--backend-port", str(self.port), "--loglevel", "warning"],
            cwd=self.cwd, env=self.env, stdout=self.log.open("a"), stderr=subprocess.STDOUT,
            start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited early; see {self.log}:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url("/ping"), timeout=2) as r:
                    if r.status == 200:
                        with urllib.request.urlopen(self.url("/"), timeout=5):
                            return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the app did not answer within {timeout}s; see {self.log}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


@pytest.fixture(scope="session")
def stripe_fake():
    from tests.fakes.stripe_server import FakeStripe

    fake = FakeStripe().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def paypal_fake():
    from tests.fakes.paypal_server import FakePayPal

    fake = FakePayPal().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def app(servers, tmp_path_factory, stripe_fake, paypal_fake) -> RunningApp:
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is needed for e2e tests: apt-get install -y chromium (make test does this)")
    db_name = f"mp_e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db_url = servers.create_database(db_name)
    data_dir = tmp_path_factory.mktemp("app-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env |= {"DATABASE_URL": db_url, "DATA_DIR": str(data_dir), "PUBLIC_URL": f"http://localhost:{port}",
            # development: the seeded demo data, the demo gateway's test cards and the dev outbox exist only there
            "ENVIRONMENT": "development", "REFLEX_TELEMETRY_ENABLED": "false",
            # the real Stripe and PayPal SDKs, pointed at local fakes of their APIs and hosted pages
            "STRIPE_SECRET_KEY": "sk_test_e2e", "STRIPE_WEBHOOK_SECRET": stripe_fake.webhook_secret,
            "STRIPE_API_BASE": stripe_fake.url, "PAYPAL_CLIENT_ID": paypal_fake.client_id,
            "PAYPAL_CLIENT_SECRET": paypal_fake.client_secret, "PAYPAL_WEBHOOK_ID": paypal_fake.webhook_id,
            "PAYPAL_API_BASE": paypal_fake.url}
    stripe_fake.webhook_url = f"http://localhost:{port}/api/webhooks/stripe"
    paypal_fake.webhook_url = f"http://localhost:{port}/api/webhooks/paypal"
    env.pop("REDIS_URL", None)  # jobs run in-process: the Celery path has its own integration test
    subprocess.run([sys.executable, "-m", "backend.seed"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)
    running = RunningApp(env, port, data_dir / "app.log")
    running.start()
    yield running
    running.stop()
    servers.drop_database(db_name)


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_context(browser):
    contexts: list[BrowserContext] = []

    def make(**kwargs) -> BrowserContext:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900}, **kwargs)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def page(new_context) -> Page:
    return new_context().new_page()


def login(page: Page, app: RunningApp, email: str, password: str = PASSWORD, tenant: str | None = None) -> None:
    page.goto(app.url("/login", tenant))
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#login-submit").click()


def logged_in(page: Page, app: RunningApp, email: str, tenant: str | None = None, home: str = "/client") -> None:
    login(page, app, email, tenant=tenant)
    expect(page).to_have_url(app.at(home, tenant))


def sign_up(page: Page, app: RunningApp, name: str, email: str, password: str = PASSWORD, role: str = "client",
            tenant: str | None = None) -> None:
    page.goto(app.url("/signup", tenant))
    page.locator(f"#role-{role}").click()
    page.locator("#full_name").fill(name)
    page.locator("#email").fill(email)
    page.locator("#password").fill(password)
    page.locator("#signup-submit").click()


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def signed_up(new_context, app: RunningApp, name: str, email_prefix: str) -> tuple[Page, str]:
    """A new client signs up with a unique email in a fresh browser context; returns (their page, the email)."""
    page = new_context().new_page()
    email = unique_email(email_prefix)
    sign_up(page, app, name, email)
    return page, email


def fill_and_submit(page: Page, submit: str, **fields: str) -> None:
    """Fill form fields by id (`price="120"` fills #price), then press the #<submit> button."""
    for field, value in fields.items():
        page.locator(f"#{field}").fill(value)
    page.locator(f"#{submit}").click()


def upload(page: Page, widget: str, path: Path) -> None:
    """Choose `path` in the #<widget> upload box and press its #<widget>-upload button."""
    page.locator(f"#{widget} input[type=file]").set_input_files(str(path))
    page.locator(f"#{widget}-upload").click()


NOT_AN_IMAGE = "That file is not an image we can read"


def quote_as(pro: Page, app: RunningApp, title: str, price: str, message: str, tenant: str | None = None) -> None:
    """The professional finds the request in their leads and sends a quote."""
    pro.goto(app.url("/pro/leads", tenant))
    pro.locator(".lead-card", has_text=title).locator(".send-quote").click()
    pro.locator("#price").fill(price)
    pro.locator("#message").fill(message)
    pro.locator("#quote-submit").click()
    expect(pro.get_by_text("Quote sent.")).to_be_visible()


def post_request(page: Page, app: RunningApp, title: str) -> None:
    """The client posts a plumbing request in Austin (where the demo plumber Diego works)."""
    page.goto(app.url("/requests/new"))
    page.locator("#category").click()
    page.get_by_role("option", name="Plumbing").click()
    page.locator("#title").fill(title)
    page.locator("#description").fill("The kitchen tap drips all night; probably needs a new washer.")
    page.locator("#city").fill("Austin")
    page.locator("#budget_min").fill("50")
    page.locator("#budget_max").fill("150")
    page.locator("#request-submit").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+/?$"))


def deliver_and_complete(client: Page, pro: Page, order_url: str) -> None:
    """On a paid order: the pro starts and delivers, the client confirms completion."""
    pro.goto(order_url)
    pro.locator("#action-start").click()
    expect(pro.locator("#order-state")).to_contain_text("in progress")
    pro.locator("#action-deliver").click()
    expect(pro.locator("#order-state")).to_contain_text("delivered")
    client.goto(order_url)
    client.locator("#action-complete").click()
    client.locator("#confirm-complete").click()
    expect(client.locator("#order-state")).to_contain_text("completed")


def requested_and_quoted(new_context, app: RunningApp, title: str, price: str, message: str):
    """Alice posts a request and Diego quotes on it; returns (client page, pro page, request URL)."""
    client = new_context().new_page()
    logged_in(client, app, "alice@demo.example")
    post_request(client, app, title)
    request_url = client.url
    pro = new_context().new_page()
    logged_in(pro, app, "diego@demo.example", home="/pro")
    quote_as(pro, app, title, price, message)
    return client, pro, request_url
