"""Client and professional home pages."""

from __future__ import annotations

import reflex as rx

from backend.identity import Role
from backend.bootstrap import services
from backend.errors import DomainError
from backend.orders.process import TERMINAL
from backend.orders.quotes import RequestRow
from state.app_state import AppState


class HomeState(AppState):
    city: str = ""
    avatar_url: str = ""
    recent_requests: list[RequestRow] = []
    lead_count: int = 0
    active_orders: int = 0

    def _load_for(self, role: Role):
        _, actor, redirect = self._guard(role)
        if redirect or self.access != "ok":
            return redirect
        try:
            profile = services().profiles.get_own(actor)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.city, self.avatar_url = profile.city, profile.avatar_url
        tenant = self._tenant()
        if role == Role.CLIENT:
            self.recent_requests = services().quotes.my_requests(tenant, actor)[:3]
        else:
            self.lead_count = len(services().quotes.leads(tenant, actor))
        self.active_orders = sum(o.state not in TERMINAL for o in services().orders.list_orders(tenant, actor))
        return None

    @rx.event
    def load_client(self):
        return self._load_for(Role.CLIENT)

    @rx.event
    def load_pro(self):
        return self._load_for(Role.PROFESSIONAL)
