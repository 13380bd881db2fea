"""Great-circle geometry on a spherical Earth: distances, and the latitude/longitude box around a circle.

Places themselves (names, coordinates) come from the gazetteer (backend/places)."""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0  # mean radius: haversine's usual sphere, within 0.5 % of the ellipsoid


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance between two (latitude, longitude) points."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return EARTH_RADIUS_KM * 2 * math.asin(math.sqrt(min(1.0, h)))


def bounding_box(lat: float, lon: float, km: float) -> tuple[float, float, float, float]:
    """(min_lat, max_lat, min_lon, max_lon) holding every point within `km` of (lat, lon): a cheap pre-filter
    (two range checks) before the exact `distance_km`; it holds a little more than the circle, never less.

    - Latitudes are clamped to [-90, 90]. When the circle reaches a pole, every longitude is inside: the box
      is the full [-180, 180] range.
    - Otherwise the longitude half-width is the exact one where the circle is widest (asin(sin r / cos lat),
      Matuschek's bounding coordinates), not km / cos(lat), which is too narrow at high latitudes.
    - Across the antimeridian the box wraps: both bounds are brought back into [-180, 180], so
      min_lon > max_lon, and a longitude x is inside when x >= min_lon OR x <= max_lon (the GeoJSON bbox
      convention). Around (0, 179.9) with 50 km: min_lon ~ 179.45, max_lon ~ -179.65.
    """
    angular = max(km, 0.0) / EARTH_RADIUS_KM
    min_lat, max_lat = lat - math.degrees(angular), lat + math.degrees(angular)
    if min_lat <= -90.0 or max_lat >= 90.0:
        return max(min_lat, -90.0), min(max_lat, 90.0), -180.0, 180.0
    ratio = math.sin(angular) / math.cos(math.radians(lat))
    if ratio >= 1.0:  # only reachable within a hair of a pole: every meridian crosses the circle
        return min_lat, max_lat, -180.0, 180.0
    delta = math.degrees(math.asin(ratio))  # < 90 degrees
    min_lon, max_lon = lon - delta, lon + delta
    if min_lon < -180.0:
        min_lon += 360.0
    if max_lon > 180.0:
        max_lon -= 360.0
    return min_lat, max_lat, min_lon, max_lon


# TEMPORARY (issue 11): the old 30-city list, until backend/orders/quotes.py resolves places through the gazetteer.
CITIES: dict[str, tuple[float, float]] = {
    "Amsterdam": (52.3676, 4.9041), "Atlanta": (33.7490, -84.3880), "Austin": (30.2672, -97.7431),
    "Barcelona": (41.3874, 2.1686), "Berlin": (52.5200, 13.4050), "Boston": (42.3601, -71.0589),
    "Cambridge": (42.3736, -71.1097), "Chicago": (41.8781, -87.6298), "Dallas": (32.7767, -96.7970),
    "Denver": (39.7392, -104.9903), "Dublin": (53.3498, -6.2603), "Houston": (29.7604, -95.3698),
    "Lisbon": (38.7223, -9.1393), "London": (51.5074, -0.1278), "Los Angeles": (34.0522, -118.2437),
    "Madrid": (40.4168, -3.7038), "Miami": (25.7617, -80.1918), "Munich": (48.1351, 11.5820),
    "New York": (40.7128, -74.0060), "Paris": (48.8566, 2.3522), "Philadelphia": (39.9526, -75.1652),
    "Portland": (45.5152, -122.6784), "Round Rock": (30.5083, -97.6789), "San Diego": (32.7157, -117.1611),
    "San Francisco": (37.7749, -122.4194), "Seattle": (47.6062, -122.3321), "Toronto": (43.6532, -79.3832),
    "Vancouver": (49.2827, -123.1207), "Vienna": (48.2082, 16.3738), "Washington": (38.9072, -77.0369),
}
_BY_LOWER = {name.lower(): coords for name, coords in CITIES.items()}


def locate(city: str) -> tuple[float, float] | None:
    return _BY_LOWER.get(" ".join(city.split()).lower())
