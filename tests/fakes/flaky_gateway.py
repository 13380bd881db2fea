"""A payment gateway wrapper that fails on demand, the way providers fail: before acting, after acting with the
answer lost, or by refusing. Wraps the demo gateway in the payment tests."""

from __future__ import annotations

from backend.payments.ports import PaymentDeclined, PaymentUnavailable


class Flaky:
    """Wraps the demo gateway: the next `times` captures, transfers, voids or refunds (or only calls of method `on`)
    fail as armed. before: the provider never got it; after: it acted, the answer is lost; decline: it refuses."""

    def __init__(self, inner):
        self.inner, self.name, self.calls = inner, inner.name, []
        self.arm("none")

    def arm(self, mode: str, times: int = 1, on: str | None = None) -> None:
        self.mode, self.times, self.on = mode, times, on

    def _call(self, method: str, **kwargs):
        armed = self.times > 0 and self.on in (None, method)
        mode = self.mode if armed else "none"
        self.times -= armed
        self.calls.append((method, kwargs["idempotency_key"], mode))
        if mode == "before":
            raise PaymentUnavailable("injected: provider down")
        if mode == "decline":
            raise PaymentDeclined("injected: the provider refuses")
        result = getattr(self.inner, method)(**kwargs)
        if mode == "after":
            raise PaymentUnavailable("injected: timeout after the provider acted")
        return result

    def capture(self, **kw):
        return self._call("capture", **kw)

    def transfer(self, **kw):
        return self._call("transfer", **kw)

    def refund(self, **kw):
        return self._call("refund", **kw)

    def __getattr__(self, name):
        return getattr(self.inner, name)
