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



LOCALITY_DEGREES = 0.01  # about a kilometre: the grid locality_key interleaves
_LOCALITY_BITS = 16  # 36,000 columns and 18,000 rows fit in 16 bits each


def locality_key(lat: float | None, lon: float | None) -> int:
    """A number that is close for points close together, mostly: the Z-order (Morton code) of the point's cell
    in a LOCALITY_DEGREES grid, the bits of its row and column interleaved. Sorting by it lays a region's points
    out in a few stretches; points without a location sort last."""
    if lat is None or lon is None:
        return 1 << (2 * _LOCALITY_BITS)
    row = min(int((lat + 90) / LOCALITY_DEGREES), 2 ** _LOCALITY_BITS - 1)
    column = min(int((lon + 180) / LOCALITY_DEGREES), 2 ** _LOCALITY_BITS - 1)
    key = 0
    for bit in range(_LOCALITY_BITS):
        key |= (column >> bit & 1) << (2 * bit) | (row >> bit & 1) << (2 * bit + 1)
    return key
