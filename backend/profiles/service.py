"""User Profile service: read and edit one's own profile, including the avatar."""

from __future__ import annotations

import secrets

from backend.identity import Caller, Role
from backend.config import Settings
from backend.db import Database, utcnow
from backend.errors import NotFound, PermissionDenied, ValidationFailed
from backend.places import UNKNOWN_PLACE, Gazetteer
from backend.profiles.models import Profile, ProfileUpdate, ProfileView
from backend.profiles.ports import SearchIndexJobs
from backend.storage.images import load_image, thumbnail
from backend.storage.ports import ObjectStore
from backend.validation import parse_input

AVATAR_SIZE = 256


class ProfileService:
    def __init__(self, db: Database, settings: Settings, store: ObjectStore, *, jobs: SearchIndexJobs,
                 places: Gazetteer):
        self.db = db
        self.settings = settings
        self.store = store
        self.places = places  # a city, when given, is stored as the gazetteer's label for it
        self.jobs = jobs  # a professional's name and photo are in their search document

    @staticmethod
    def _require_member(actor: Caller | None) -> Caller:
        if actor is None or actor.tenant_id is None:
            raise PermissionDenied("Please log in first.")
        return actor

    def _view(self, p: Profile) -> ProfileView:
        return ProfileView(user_id=p.user_id, full_name=p.full_name, city=p.city,
                           avatar_url=self.store.url(p.avatar_key) if p.avatar_key else "")

    def get_own(self, actor: Caller) -> ProfileView:
        actor = self._require_member(actor)
        with self.db.tenant_session(actor.tenant_id) as session:
            profile = session.get(Profile, actor.id)
            if profile is None:
                raise NotFound("Profile not found.")
            return self._view(profile)

    def update_own(self, actor: Caller, data: dict) -> ProfileView:
        actor = self._require_member(actor)
        form = parse_input(ProfileUpdate, data)
        city = ""
        if form.city:  # optional for everyone (a client need not say where they live)
            place = self.places.resolve(form.city)
            if place is None:
                raise ValidationFailed({"city": UNKNOWN_PLACE})
            city = place.label
        with self.db.tenant_session(actor.tenant_id) as session:
            profile = session.get(Profile, actor.id)
            if profile is None:
                raise NotFound("Profile not found.")
            profile.full_name, profile.city = form.full_name, city
            profile.updated_at = utcnow()
            view = self._view(profile)
        self._reindex(actor)
        return view

    def set_avatar(self, actor: Caller, data: bytes) -> ProfileView:
        actor = self._require_member(actor)
        image = load_image(data, field="avatar", max_bytes=self.settings.max_avatar_bytes)
        thumb = thumbnail(image, AVATAR_SIZE, square=True)
        # A new key per upload: caches never serve the old picture, and the row only
        # points at the file once it is fully written.
        key = f"t{actor.tenant_id}/avatars/u{actor.id}-{secrets.token_hex(6)}.jpg"
        self.store.put(key, thumb, "image/jpeg")
        with self.db.tenant_session(actor.tenant_id) as session:
            profile = session.get(Profile, actor.id)
            if profile is None:
                raise NotFound("Profile not found.")
            profile.avatar_key = key
            profile.updated_at = utcnow()
            view = self._view(profile)
        self._reindex(actor)
        return view

    def _reindex(self, actor: Caller) -> None:
        """After commit: a professional's search card shows their name and photo."""
        if actor.role == Role.PROFESSIONAL:
            self.jobs.index_pro(actor.tenant_id, actor.id)
