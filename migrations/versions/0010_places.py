"""places: stored cities become gazetteer places (canonical label, and coordinates where the table has them)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00.000000

Until now a city was whatever was typed ("austin", "Austin"), located through a list of 30 cities. From here on
the services store the gazetteer's label ("Austin, TX, United States") and its coordinates. This rewrites what
is stored: every pro_profile, profile and service_request city the gazetteer knows gets its label, and
pro_profile and service_request rows get its latitude and longitude. A row that already had coordinates keeps
the namesake nearest to them ("Cambridge" near Boston stays in Massachusetts, not England). A city the
gazetteer does not know is left as it is (its owner is asked to choose one the next time they edit it).

No schema change; downgrade leaves the labels (they are valid city text for the old code too).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.geo import distance_km
from backend.places.adapters.geonames import GeonamesGazetteer

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (primary key, has latitude/longitude)
TABLES = {"pro_profile": ("user_id", True), "profile": ("user_id", False), "service_request": ("id", True)}
SAME_PLACE_KM = 100.0  # stored coordinates this close to a namesake say which one was meant


def _place(gazetteer: GeonamesGazetteer, city: str, lat: float | None, lon: float | None):
    candidates = gazetteer.candidates(city)
    if not candidates:
        return None
    if lat is not None and lon is not None:
        nearest = min(candidates, key=lambda p: distance_km((lat, lon), (p.latitude, p.longitude)))
        if distance_km((lat, lon), (nearest.latitude, nearest.longitude)) <= SAME_PLACE_KM:
            return nearest
    return candidates[0]


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    gazetteer = GeonamesGazetteer()  # loads its data only if some row has a city to resolve
    for table, (key, located) in TABLES.items():
        if postgres:
            # The owner runs migrations and is held by the FORCEd row-level security like the app (SELECT only,
            # through owner_reads): lift FORCE for this rewrite of every tenant's rows, put it back before commit.
            op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        columns = f"{key}, city, latitude, longitude" if located else f"{key}, city, NULL, NULL"
        rows = bind.execute(sa.text(f"SELECT {columns} FROM {table} WHERE city <> ''")).all()
        for row_key, city, lat, lon in rows:
            place = _place(gazetteer, city, lat, lon)
            if place is None:
                continue
            if located:
                if (city, lat, lon) != (place.label, place.latitude, place.longitude):
                    bind.execute(sa.text(f"UPDATE {table} SET city = :city, latitude = :lat, longitude = :lon "
                                         f"WHERE {key} = :key"),
                                 {"city": place.label, "lat": place.latitude, "lon": place.longitude, "key": row_key})
            elif city != place.label:
                bind.execute(sa.text(f"UPDATE {table} SET city = :city WHERE {key} = :key"),
                             {"city": place.label, "key": row_key})
        if postgres:
            op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    """Nothing to undo: labels are city text the previous revision accepts."""
