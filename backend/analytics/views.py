"""What the analytics pages read: the period asked for and the dashboard's numbers, as frozen dataclasses.

Money is shown as display strings with the raw minor units beside them; the parts that feed charts and tables are
lists of dicts of plain values (Reflex serialises them as they are, the CSV export writes them as they are).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import ClassVar

from backend.errors import ValidationFailed

STEPS = ("requests", "quoted", "hired", "paid", "completed")
COHORT_MONTHS = 12

# every chart and table of the dashboard that exports as CSV: its columns, in order
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "kpis": ("key", "label", "value", "raw", "previous", "change_pct"),
    "orders_by_state": ("state", "count"),
    "series": ("day", "gmv", "fees", "orders", "signups"),
    "funnel": ("step", "count", "conversion_pct"),
    "funnel_by_category": ("category",) + STEPS,
    "cohorts": ("cohort", "clients") + tuple(f"m{k}" for k in range(COHORT_MONTHS)),
    "supply_demand": ("category", "place", "open_requests", "unanswered", "active_pros"),
}
TABLES = tuple(TABLE_COLUMNS)


@dataclass(frozen=True)
class Period:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    MAX_DAYS: ClassVar[int] = 731
    PRESETS: ClassVar[dict[str, int]] = {"7 days": 7, "30 days": 30, "90 days": 90, "12 months": 365}

    @classmethod
    def last(cls, days: int, today: date) -> Period:
        """The `days` days ending today (the presets)."""
        return cls(today - timedelta(days=days - 1), today)

    @classmethod
    def parse(cls, start: str, end: str) -> Period:
        """From the date inputs' ISO text; ValidationFailed names the field that is not a date."""
        errors, days = {}, {}
        for name, text in (("start", start), ("end", end)):
            try:
                days[name] = date.fromisoformat((text or "").strip())
            except ValueError:
                errors[name] = "Enter a date (YYYY-MM-DD)"
        if errors:
            raise ValidationFailed(errors)
        return cls(days["start"], days["end"])

    def check(self, today: date) -> Period:
        """The rules of a period, at the service boundary: start <= end, at most MAX_DAYS, and the end no later
        than tomorrow (UTC; a viewer ahead of UTC may already be there)."""
        if not isinstance(self.start, date) or not isinstance(self.end, date):
            raise ValidationFailed({"start": "Enter a date (YYYY-MM-DD)"})
        if self.end < self.start:
            raise ValidationFailed({"end": "The end is before the start"})
        if self.end > today + timedelta(days=1):
            raise ValidationFailed({"end": "The end is in the future"})
        if self.days > self.MAX_DAYS:
            raise ValidationFailed({"start": f"Choose at most {self.MAX_DAYS} days"})
        return self

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length right before this one (what the KPIs are compared with)."""
        end = self.start - timedelta(days=1)
        return Period(end - timedelta(days=self.days - 1), end)

    @property
    def label(self) -> str:
        def short(d: date) -> str:
            return f"{d:%b} {d.day}"

        if self.start == self.end:
            return f"{short(self.start)}, {self.start.year}"
        if self.start.year == self.end.year:
            return f"{short(self.start)} – {short(self.end)}, {self.end.year}"
        return f"{short(self.start)}, {self.start.year} – {short(self.end)}, {self.end.year}"


@dataclass(frozen=True)
class KpiValue:
    key: str
    label: str
    value: str  # as shown: "$1,234.00", "12.5%", "3.5 h", "42"; "—" when there is nothing to compute it from
    raw: float | int  # minor units for money, percent for rates, hours, counts (0 when value is "—")
    previous: str  # the previous period's value as shown ("" when not compared)
    change_pct: float | None  # relative change from the previous period; None when not comparable
    better: str  # "up" | "down": which direction is good news
    hint: str  # one line of what it is (the glossary has the exact definition)


@dataclass(frozen=True)
class Dashboard:
    period_label: str
    currency: str  # the main currency: the money KPIs without a currency suffix, the series
    kpis: list[KpiValue]
    orders_by_state: list[dict]  # {state, count}
    series: list[dict]  # {day: "YYYY-MM-DD", gmv: float, fees: float, orders: int, signups: int}
    funnel: list[dict]  # {step, count, conversion_pct}
    funnel_by_category: list[dict]  # {category, requests, quoted, hired, paid, completed}
    cohorts: list[dict]  # {cohort: "YYYY-MM", clients: int, m0..m11: float | None}
    supply_demand: list[dict]  # {category, place, open_requests, unanswered, active_pros}
    categories: list[dict]  # {id, name}: the category filter's choices
    generated_at: str
    glossary: list[dict]  # {term, definition}
    currencies: list[str] = field(default_factory=list)  # the main one first

    @classmethod
    def from_dict(cls, data: dict) -> Dashboard:
        return cls(**{**data, "kpis": [KpiValue(**k) for k in data["kpis"]]})

    def kpi(self, key: str) -> KpiValue:
        return next(k for k in self.kpis if k.key == key)


@dataclass(frozen=True)
class TenantKpis:
    """One marketplace's row in the operator's overview: the dashboard's KPIs for the period."""

    tenant_id: int
    slug: str
    name: str
    status: str
    currency: str
    kpis: list[KpiValue]

    @classmethod
    def from_dict(cls, data: dict) -> TenantKpis:
        return cls(**{**data, "kpis": [KpiValue(**k) for k in data["kpis"]]})

    def kpi(self, key: str) -> KpiValue:
        return next(k for k in self.kpis if k.key == key)


def table_rows(dashboard: Dashboard, table: str) -> tuple[list[str], list[list[object]]]:
    """One chart or table of the dashboard as (headers, rows): what its CSV export holds."""
    if table not in TABLE_COLUMNS:
        raise ValidationFailed({"table": f"Choose one of: {', '.join(TABLES)}"})
    columns = list(TABLE_COLUMNS[table])
    if table == "kpis":
        return columns, [[getattr(k, c) for c in columns] for k in dashboard.kpis]
    return columns, [[row.get(c) for c in columns] for row in getattr(dashboard, table)]
