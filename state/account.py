"""My account: profile details and avatar."""

from __future__ import annotations

import asyncio

import reflex as rx

from backend.bootstrap import services
from backend.errors import DomainError
from state.app_state import AppState, FormMixin
from state.uploads import read_uploads

MAX_AVATAR_MB = 5


class AccountState(FormMixin, AppState):
    full_name: str = ""
    phone: str = ""
    city: str = ""
    avatar_url: str = ""
    form_key: int = 0  # bump to re-render inputs with freshly loaded defaults
    uploading: bool = False

    def _apply(self, profile) -> None:
        self.full_name, self.phone, self.city, self.avatar_url = (
            profile.full_name, profile.phone, profile.city, profile.avatar_url)
        self.user_name = profile.full_name
        self.form_key += 1

    @rx.event
    def load(self):
        self._reset_form()
        _, actor, redirect = self._guard("client", "professional", "admin")
        if redirect or self.access != "ok":
            return redirect
        self._apply(services().profiles.get_own(actor))

    @rx.event
    def save(self, form: dict):
        _, actor, _ = self._guard("client", "professional", "admin")
        try:
            profile = services().profiles.update_own(actor, form)
        except DomainError as exc:
            return self._fail(exc)
        self._clear_errors()
        self._apply(profile)
        return rx.toast.success("Profile saved.")

    @rx.event
    async def upload_avatar(self, files: list[rx.UploadFile]):
        # Who is asking first; the file is read only for a signed-in member, and never beyond its limit.
        _, actor, _ = self._guard("client", "professional", "admin")
        if self.access != "ok" or actor is None:
            return [rx.clear_selected_files("avatar"), rx.toast.error("Please log in first.")]
        if not files:
            return rx.toast.error("Choose an image first.")
        try:
            [(_, data)] = await read_uploads(files, field="avatar", max_files=1,
                                             max_bytes=services().settings.max_avatar_bytes)
            profile = await asyncio.to_thread(services().profiles.set_avatar, actor, data)
        except DomainError as exc:
            self._fail(exc)
            return [rx.clear_selected_files("avatar"), rx.toast.error(self.errors.get("avatar", exc.message))]
        self._clear_errors()
        self._apply(profile)
        return [rx.clear_selected_files("avatar"), rx.toast.success("Photo updated.")]
