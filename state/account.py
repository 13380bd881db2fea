"""My account: profile details and avatar."""

from __future__ import annotations

import reflex as rx

from backend.bootstrap import services
from state.app_state import FAILED, MEMBER_ROLES, AppState, Ctx, FormMixin, requires
from state.uploads import image_limit_mb, read_uploads


def _refused_upload():
    return [rx.clear_selected_files("avatar"), rx.toast.error("Please log in first.")]


class AccountState(FormMixin, AppState):
    full_name: str = ""
    city: str = ""
    avatar_url: str = ""
    form_key: int = 0  # bump to re-render inputs with freshly loaded defaults
    uploading: bool = False
    max_avatar_mb: int = image_limit_mb()

    def _apply(self, profile) -> None:
        self.full_name, self.city, self.avatar_url = profile.full_name, profile.city, profile.avatar_url
        self.user_name = profile.full_name
        self.form_key += 1

    @rx.event
    @requires(*MEMBER_ROLES)
    async def load(self, ctx: Ctx):
        self._reset_form()
        self._apply(await self._run(services().profiles.get_own, ctx.caller))

    @rx.event
    @requires(*MEMBER_ROLES)
    async def save(self, ctx: Ctx, form: dict):
        profile = await self._call(services().profiles.update_own, ctx.caller, form)
        if profile is FAILED:
            return None
        self._apply(profile)
        return rx.toast.success("Profile saved.")

    @rx.event
    @requires(*MEMBER_ROLES, refusal=_refused_upload)
    async def upload_avatar(self, ctx: Ctx, files: list[rx.UploadFile]):
        # Who is asking first (the guard); the file is read only for a signed-in member, and never beyond its limit.
        if not files:
            return rx.toast.error("Choose an image first.")
        uploads = await self._call(read_uploads, files, field="avatar", max_files=1,
                                   max_bytes=services().settings.max_avatar_bytes)
        profile = FAILED if uploads is FAILED else await self._call(services().profiles.set_avatar, ctx.caller,
                                                                    uploads[0][1])
        if profile is FAILED:
            return [rx.clear_selected_files("avatar"), self._refused("avatar")]
        self._apply(profile)
        return [rx.clear_selected_files("avatar"), rx.toast.success("Photo updated.")]
