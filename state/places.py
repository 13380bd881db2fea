"""Place suggestions for every place field (components.forms.place_field): the gazetteer's labels for what is typed.

One list per tab, tagged with the field it answers, so that two place fields on one page never show each other's
suggestions. No guard: the gazetteer is public data, the same for every marketplace and visitor."""

from __future__ import annotations

import asyncio

import reflex as rx

from backend.bootstrap import services

MAX_SUGGESTIONS = 8


def place_labels(text: str) -> list[str]:
    """Blocking the first time (the gazetteer loads its cities once per process), then well under a millisecond."""
    return [place.label for place in services().places.suggest(text, MAX_SUGGESTIONS)]


class PlaceSuggestState(rx.State):
    field_id: str = ""  # the place field these suggestions are for
    suggestions: list[str] = []

    @rx.event
    async def suggest(self, field_id: str, text: str):
        labels = await asyncio.to_thread(place_labels, str(text or "")[:80])
        self.field_id, self.suggestions = field_id, labels
