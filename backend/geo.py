"""Places without a geocoding service: a small gazetteer of cities, and great-circle distance."""

from __future__ import annotations

import math

# name -> (latitude, longitude). Enough for demos and tests; a geocoder adapter can replace it.
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


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Haversine distance."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(math.sqrt(h))
