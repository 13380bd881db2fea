"""`requires(*roles)`, the one guard of the Reflex handlers: what the page may show, who gets the login redirect,
that the guarded handler receives the tenant and caller, and that Reflex still binds an event's arguments by the
handler's own parameters (without the guard's `ctx`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import reflex as rx

from backend.errors import NotFound
from backend.identity import Caller, Role, TenantPublic
from state.app_state import MEMBER_ROLES, AppState, Ctx, requires

TENANT = TenantPublic(id=1, slug="demo", name="Demo", primary_color="#000000", accent_color="#ffffff", logo_url="",
                      currency="USD", platform_fee_bps=1000, status="active")
CLIENT = Caller(role=Role.CLIENT, id=7, tenant_id=1, name="Alice")


class GuardProbeState(AppState):
    """Handlers of each kind Reflex runs: a coroutine, an async generator, an upload, a background task."""

    @rx.event
    @requires(*MEMBER_ROLES)
    async def act(self, ctx: Ctx, action: str):
        return ctx, action

    @rx.event
    @requires(Role.CLIENT)
    async def steps(self, ctx: Ctx, n: int):
        for i in range(n):
            yield (ctx.caller.id, i)

    @rx.event
    @requires(Role.CLIENT)
    async def upload(self, ctx: Ctx, files: list[rx.UploadFile]):
        return None

    @rx.event(background=True)
    @requires(Role.ADMIN)
    async def slow(self, ctx: Ctx, amount: str):
        yield None

    @rx.event
    @requires(Role.CLIENT, reuse_seconds=30)
    async def poll(self, ctx: Ctx):
        return ctx


class FakeState:
    """The part of a state the guard touches, with AppState's own decision (`_admit`, `_recently_admitted`)."""

    _admit = AppState._admit
    _recently_admitted = AppState._recently_admitted

    def __init__(self, tenant: TenantPublic | None, caller: Caller | None):
        self.found = tenant, caller
        self.access = "loading"
        self.router = SimpleNamespace(url=SimpleNamespace(path="/orders/3"))
        self.token = "session-1"
        self._admitted = None
        self.lookups = 0

    def _session_token(self) -> str:
        return self.token

    async def _identify(self):
        self.lookups += 1
        return self.found

    def _show_identity(self, tenant, caller) -> None:
        self.shown = tenant, caller


def run(handler, state, *args):
    return asyncio.run(handler.fn(state, *args))


def test_event_arguments_bind_to_the_handlers_own_parameters():
    ((name, value),) = GuardProbeState.act("pay").args
    assert (name._js_expr, value._var_value) == ("action", "pay")  # not to the guard's ctx
    assert list(GuardProbeState.event_handlers["slow"].get_parameters()) == ["self", "amount"]
    assert GuardProbeState.event_handlers["slow"].is_background
    assert list(GuardProbeState.event_handlers["upload"]._get_type_hints()) == ["files"]


def test_the_caller_gets_through_with_tenant_and_caller():
    state = FakeState(TENANT, CLIENT)
    assert run(GuardProbeState.event_handlers["act"], state, "pay") == (Ctx(TENANT, CLIENT), "pay")
    assert state.access == "ok" and state.shown == (TENANT, CLIENT)


def test_a_visitor_is_sent_to_login_and_the_handler_does_not_run():
    state = FakeState(TENANT, None)
    redirect = run(GuardProbeState.event_handlers["act"], state, "pay")
    assert state.access == "loading"
    assert "/login?next=/orders/3" in str(redirect)


def test_another_role_and_a_suspended_marketplace_are_refused():
    admin = Caller(role=Role.ADMIN, id=1, tenant_id=1)
    state = FakeState(TENANT, admin)
    assert run(GuardProbeState.event_handlers["upload"], state, []) is None  # the page shows the refusal
    assert state.access == "denied"
    suspended = FakeState(TENANT.model_copy(update={"status": "suspended"}), CLIENT)
    assert run(GuardProbeState.event_handlers["act"], suspended, "pay") is None
    assert suspended.access == "denied"


def test_async_generators_are_guarded_and_stream_their_updates():
    async def collect(state, n):
        return [update async for update in GuardProbeState.event_handlers["steps"].fn(state, n)]

    assert asyncio.run(collect(FakeState(TENANT, CLIENT), 2)) == [(7, 0), (7, 1)]
    admin = FakeState(TENANT, Caller(role=Role.ADMIN, id=1, tenant_id=1))
    assert asyncio.run(collect(admin, 2)) == [None]  # refused: nothing but the (empty) refusal


def test_a_refusal_the_handler_lets_escape_is_a_toast():
    class RefusingState(AppState):
        @rx.event
        @requires()
        async def look(self, ctx: Ctx):
            raise NotFound("No such order.")

    toast = run(RefusingState.event_handlers["look"], FakeState(TENANT, None))
    assert "No such order." in str(toast)


def test_a_poll_reuses_the_caller_admitted_moments_ago_on_the_same_session_only(monkeypatch):
    state = FakeState(TENANT, CLIENT)
    poll = GuardProbeState.event_handlers["poll"]
    assert run(poll, state) == Ctx(TENANT, CLIENT) and state.lookups == 1
    assert run(poll, state) == Ctx(TENANT, CLIENT) and state.lookups == 1  # reused: no session lookup
    run(GuardProbeState.event_handlers["act"], state, "pay")  # an ordinary handler always looks up
    assert state.lookups == 2
    state.token = "session-2"  # another session cookie (logged out and in again): looked up again
    run(poll, state)
    assert state.lookups == 3
    later = __import__("time").time() + 31
    monkeypatch.setattr("state.app_state.time.time", lambda: later)  # too old: looked up again
    state.found = TENANT, None  # ... and the session is gone meanwhile: the poll is refused
    assert "/login" in str(run(poll, state)) and state.lookups == 4


def test_a_poll_does_not_reuse_a_caller_whose_role_does_not_fit():
    admin = Caller(role=Role.ADMIN, id=1, tenant_id=1)
    state = FakeState(TENANT, admin)
    run(GuardProbeState.event_handlers["act"], state, "pay")  # admitted as a member (admin)
    assert run(GuardProbeState.event_handlers["poll"], state) is None  # the client-only poll looks up and refuses
    assert state.lookups == 2 and state.access == "denied"
