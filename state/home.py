"""Client and professional home pages."""

from __future__ import annotations

import reflex as rx

from backend.accounts.models import Role
from backend.bootstrap import services
from backend.errors import DomainError
from state.app_state import AppState


class HomeState(AppState):
    city: str = ""
    avatar_url: str = ""

    def _load_for(self, role: Role):
        _, actor, redirect = self._guard(role)
        if redirect or self.access != "ok":
            return redirect
        try:
            profile = services().profiles.get_own(actor)
        except DomainError as exc:
            return rx.toast.error(exc.message)
        self.city, self.avatar_url = profile.city, profile.avatar_url
        return None

    @rx.event
    def load_client(self):
        return self._load_for(Role.CLIENT)

    @rx.event
    def load_pro(self):
        return self._load_for(Role.PROFESSIONAL)
