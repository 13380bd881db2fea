"""What the provider fakes share: an HTTP server on a daemon thread, started and stopped around a test."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class ServedFake(ABC):
    """A fake provider's server side. `start()` serves the subclass's `_handler()` on `host` and `port` (0: the OS
    picks a free one) from a daemon thread, `stop()` ends it, `url` is the API base to give the adapter; `with fake:`
    does both."""

    thread_name = "fake-provider"
    # shutdown() waits for the next poll, and tests start and stop a fake per test: keep it short.
    poll_interval = 0.05

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @abstractmethod
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class serving this fake's API."""

    def start(self) -> Self:
        self._server = ThreadingHTTPServer((self.host, self._port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": self.poll_interval},
                                        name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The API base to give the adapter, e.g. http://127.0.0.1:41234."""
        return f"http://{self.host}:{self.port}"
