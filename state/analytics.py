"""Admin analytics: the dashboard (/admin), the operations queues (/admin/operations) and the admin nav's badge.

The dashboard is read by a background event (STYLE.md 7): a cold dashboard folds new rows into the rollups before
it reads, which may take longer than a click should hold the tab's state lock. State is written only in short
`async with self` blocks; a newer range or category supersedes a read still running (`_seq`). The numbers, their
definitions and the CSV files all come from AnalyticsService; this module only shapes them for the page."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

import reflex as rx

from backend.analytics import QUEUES, Dashboard, OpsQueues, Period, TenantKpis
from backend.bootstrap import services
from backend.db import utcnow
from backend.identity import Caller, Role
from backend.money import format_money, minor_unit_exponent
from state.app_state import FAILED, AppState, Ctx, FormMixin, requires

# The range presets (the backend's): (value, button label, days ending today).
PRESETS: list[tuple[str, str, int]] = [(label.replace(" ", "-"), label, days) for label, days in Period.PRESETS.items()]
DEFAULT_PRESET = "30-days"
ALL = "all"  # the category select's "every category"
SUPPLY_ROWS_SHOWN = 12  # supply and demand's first rows (in the chosen order); a button shows the rest


def today() -> date:
    """The dashboard's days are UTC days (the rollups attribute facts to the UTC day they happened)."""
    return utcnow().date()


def preset_period(preset: str) -> Period:
    return Period.last(next(days for value, _, days in PRESETS if value == preset), today())


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        return None


def _category(value: str) -> int | None:
    return int(value) if value.isdigit() else None


# ------------------------------------------------------------------------------------------------ shaping

def _change(pct: float | None, better: str) -> tuple[str, str, str]:
    """A KPI's change against the previous period: (shown text, colour, words for a screen reader). Up is green
    when up is better (GMV), red when down is better (refund rate)."""
    if pct is None:
        return "—", "gray", "no previous value to compare with"
    if abs(pct) < 0.05:
        return "→ 0%", "gray", "unchanged from the previous period"
    up = pct > 0
    colour = "green" if up == (better == "up") else "red"
    text = f"{'↑' if up else '↓'} {abs(pct):.1f}%"
    return text, colour, f"{'up' if up else 'down'} {abs(pct):.1f}% on the previous period"


def kpi_cards(dashboard: Dashboard) -> list[dict[str, str]]:
    """The KPI cards: the service's values as they are, the change as an arrow coloured by which way is good."""
    cards = []
    for k in dashboard.kpis:
        change, tone, spoken = _change(k.change_pct, k.better)
        cards.append({"key": k.key, "label": k.label, "value": k.value, "previous": k.previous, "change": change,
                      "tone": tone, "spoken": spoken, "hint": k.hint or ""})
    return cards


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _shade(value: float | None, top: float) -> str:
    """A cohort cell's background: the brand colour, stronger for a larger share (relative to the table's largest)."""
    if value is None or top <= 0:
        return "transparent"
    return f"color-mix(in srgb, var(--brand) {round(8 + 62 * min(value / top, 1.0))}%, white)"


def cohort_rows(cohorts: list[dict]) -> list[dict[str, str]]:
    """Each cohort as display strings: m0..m11 percentages and their backgrounds (m0..m11_bg), and white text on the
    darkest cells (m0..m11_fg)."""
    top = max((r[f"m{k}"] or 0 for r in cohorts for k in range(12)), default=0)
    rows = []
    for r in cohorts:
        row = {"cohort": r["cohort"], "clients": str(r["clients"])}
        for k in range(12):
            value = r[f"m{k}"]
            row[f"m{k}"] = _pct(value)
            row[f"m{k}_bg"] = _shade(value, top)
            row[f"m{k}_fg"] = "white" if value is not None and top > 0 and value / top > 0.6 else "var(--gray-12)"
        rows.append(row)
    return rows


def _days(series: list[dict]) -> str:
    return f"{len(series)} day" + ("" if len(series) == 1 else "s")


def _money(major: float, currency: str) -> str:
    """A chart's amount (major units, a float) as the rest of the app shows money: "$1,234.50"."""
    return format_money(round(major * 10 ** minor_unit_exponent(currency)), currency)


def _series_summary(series: list[dict], currency: str) -> str:
    """The GMV chart in words: the totals, and the busiest day."""
    if not series:
        return "No days in this period."
    gmv = sum(r["gmv"] for r in series)
    fees = sum(r["fees"] for r in series)
    best = max(series, key=lambda r: r["gmv"])
    peak = f"; the busiest day was {best['day']} ({_money(best['gmv'], currency)})" if best["gmv"] > 0 else ""
    return (f"Over {_days(series)}: GMV {_money(gmv, currency)} and platform fees {_money(fees, currency)} in "
            f"total{peak}.")


def _activity_summary(series: list[dict]) -> str:
    """The orders and sign-ups chart in words."""
    if not series:
        return "No days in this period."
    orders = sum(r["orders"] for r in series)
    signups = sum(r["signups"] for r in series)
    best = max(series, key=lambda r: r["orders"])
    peak = f"; most orders on {best['day']} ({best['orders']})" if best["orders"] > 0 else ""
    return f"Over {_days(series)}: {orders} orders created and {signups} sign-ups{peak}."


def _states_summary(rows: list[dict]) -> str:
    """The orders-by-state chart in words (the table under it has every state)."""
    shown = [f"{r['label']} {r['count']}" for r in rows if r["count"]]
    return ("Orders reaching each state in this period: " + ", ".join(shown) + ".") if shown else \
        "No order reached any state in this period."


def _funnel_summary(rows: list[dict]) -> str:
    """The funnel chart in words: each step's count and its conversion from the step before."""
    if not rows or not rows[0]["count"]:
        return "No requests were posted in this period."
    steps = [f"{r['step']} {r['count']}" + (f" ({_pct(r['conversion_pct'])} of the step before)" if i else "")
             for i, r in enumerate(rows)]
    return "From request to completed: " + ", ".join(steps) + "."


def sort_rows(rows: list[dict], column: str, descending: bool) -> list[dict]:
    """Rows by one column, missing values last either way; text ignores case."""
    def key(row: dict) -> tuple:
        value = row.get(column)
        return (value is None, value.lower() if isinstance(value, str) else value)
    present = [r for r in rows if r.get(column) is not None]
    missing = [r for r in rows if r.get(column) is None]
    return sorted(present, key=key, reverse=descending) + missing


# ------------------------------------------------------------------------------------------------ the dashboard

def _dashboard(ctx: Ctx, start: str, end: str, category: str) -> Dashboard:
    return services().analytics.dashboard(ctx.tenant, ctx.caller, Period.parse(start, end), _category(category))


def _export(ctx: Ctx, start: str, end: str, category: str, table: str) -> tuple[str, str]:
    return services().analytics.export_csv(ctx.tenant, ctx.caller, Period.parse(start, end), _category(category),
                                           table)


class DashboardState(FormMixin, AppState):
    """/admin: the range (a preset or two dates), the category, and the dashboard read for them."""

    preset: str = DEFAULT_PRESET  # a PRESETS value, or "custom" for typed dates
    start: str = ""  # the date inputs (YYYY-MM-DD)
    end: str = ""
    category: str = ALL
    loading: bool = False
    loaded: bool = False
    exporting: str = ""  # the table being exported (its button spins)

    period_label: str = ""
    currency: str = ""
    currencies: list[str] = []
    generated_at: str = ""
    kpis: list[dict[str, str]] = []
    series: list[dict[str, Any]] = []
    orders_by_state: list[dict[str, Any]] = []
    funnel: list[dict[str, Any]] = []
    funnel_by_category: list[dict[str, Any]] = []
    cohorts: list[dict[str, str]] = []
    supply_demand: list[dict[str, Any]] = []
    categories: list[dict[str, str]] = []
    glossary: list[dict[str, str]] = []
    summaries: dict[str, str] = {}
    has_activity: bool = False
    supply_demand_all: bool = False  # all its rows, not the first SUPPLY_ROWS_SHOWN

    # how each sortable table is sorted: table -> column, and whether descending
    sort_column: dict[str, str] = {"funnel_by_category": "requests", "supply_demand": "unanswered"}
    sort_descending: dict[str, bool] = {"funnel_by_category": True, "supply_demand": True}

    _seq: int = 0  # the latest read asked for; an older one finishing later is dropped
    _shown: tuple[str, str, str] | None = None  # (start, end, category) of the numbers on the page (exports use it)

    # ---------------------------------------------------------------- range and filters (no service calls)

    def _use_preset(self, preset: str) -> None:
        period = preset_period(preset)
        self.preset, self.start, self.end = preset, period.start.isoformat(), period.end.isoformat()

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        """On opening the page: the last range shown in this tab, or the default preset; then the read."""
        self._clear_errors()
        if self.preset != "custom" or not (_parse_day(self.start) and _parse_day(self.end)):
            self._use_preset(self.preset if self.preset != "custom" else DEFAULT_PRESET)
        return DashboardState.fetch

    @rx.event
    def choose_preset(self, preset: str):
        if preset not in {value for value, _, _ in PRESETS}:
            return None
        self._clear_errors()
        self._use_preset(preset)
        return DashboardState.fetch

    @rx.event
    def set_start(self, value: str):
        self.start = value

    @rx.event
    def set_end(self, value: str):
        self.end = value

    @rx.event
    def apply_range(self, form: dict | None = None):
        """Typed dates: the service validates them (the errors show under the inputs)."""
        if form:
            self.start, self.end = str(form.get("start", self.start)), str(form.get("end", self.end))
        self.preset = "custom"
        return DashboardState.fetch

    @rx.event
    def set_category(self, value: str):
        self.category = value
        return DashboardState.fetch

    @rx.event
    def sort_by(self, table: str, column: str):
        if table not in self.sort_column:
            return
        if self.sort_column[table] == column:
            self.sort_descending = self.sort_descending | {table: not self.sort_descending[table]}
        else:
            self.sort_column = self.sort_column | {table: column}
            self.sort_descending = self.sort_descending | {table: column not in ("category", "place")}

    @rx.var
    def funnel_by_category_sorted(self) -> list[dict[str, Any]]:
        return sort_rows(self.funnel_by_category, self.sort_column["funnel_by_category"],
                         self.sort_descending["funnel_by_category"])

    @rx.var
    def supply_demand_sorted(self) -> list[dict[str, Any]]:
        rows = sort_rows(self.supply_demand, self.sort_column["supply_demand"], self.sort_descending["supply_demand"])
        return rows if self.supply_demand_all else rows[:SUPPLY_ROWS_SHOWN]

    @rx.event
    def show_all_supply_demand(self):
        self.supply_demand_all = True

    # ---------------------------------------------------------------- reading

    @rx.event(background=True)
    @requires(Role.ADMIN)
    async def fetch(self, ctx: Ctx):
        async with self:
            self._seq += 1
            seq, start, end, category = self._seq, self.start, self.end, self.category
            self.loading = True
        result = await self._call(_dashboard, ctx, start, end, category)
        async with self:
            if seq != self._seq:  # a newer range or category was asked for meanwhile: its read shows
                return None
            self.loading = False
            if result is FAILED:
                return None
            self._show(result)
            self._shown = (start, end, category)
        return OpsBadgeState.refresh

    def _show(self, d: Dashboard) -> None:
        money = d.currency
        self.period_label, self.currency, self.currencies = d.period_label, d.currency, list(d.currencies)
        self.generated_at = d.generated_at
        self.kpis = kpi_cards(d)
        self.series = list(d.series)
        self.orders_by_state = [{**r, "label": str(r["state"]).replace("_", " ")} for r in d.orders_by_state]
        self.funnel = [{**r, "label": str(r["step"]).capitalize(),
                        "conversion": _pct(r["conversion_pct"]) if i else ""} for i, r in enumerate(d.funnel)]
        self.funnel_by_category = list(d.funnel_by_category)
        self.cohorts = cohort_rows(list(d.cohorts)) if any(r["clients"] for r in d.cohorts) else []
        self.supply_demand = list(d.supply_demand)
        self.categories = [{"id": str(c["id"]), "name": c["name"]} for c in d.categories]
        self.glossary = [dict(g) for g in d.glossary]
        # orders or requests in the period: else the charts give way to an empty state (a new marketplace)
        self.has_activity = any(r["count"] for r in d.orders_by_state) or any(
            r["orders"] or r["gmv"] for r in d.series) or any(r["count"] for r in d.funnel)
        self.summaries = {
            "series": _series_summary(self.series, money),
            "activity": _activity_summary(self.series),
            "orders_by_state": _states_summary(self.orders_by_state),
            "funnel": _funnel_summary(self.funnel),
        }
        self.loaded = True

    @rx.event(background=True)
    @requires(Role.ADMIN)
    async def export(self, ctx: Ctx, table: str):
        """A chart's or table's numbers as CSV, for the range and category on the page (the same Dashboard)."""
        async with self:
            if self._shown is None or self.exporting:
                return None
            (start, end, category), self.exporting = self._shown, table
        try:
            result = await self._call(_export, ctx, start, end, category, table)
        finally:
            async with self:
                self.exporting = ""
        if result is FAILED:
            async with self:
                return rx.toast.error(self._refusal)
        filename, text = result
        return rx.download(data=text, filename=filename, mime_type="text/csv")


# ------------------------------------------------------------------------------------------------ operations

# What each queue on /admin/operations is for and what its rows' button does (titles, links and empty texts are
# the backend's QUEUES).
QUEUE_ABOUT: dict[str, tuple[str, str]] = {
    "disputes": ("Orders in dispute, the longest waiting first: refund, release or split.", "Resolve"),
    "reported_reviews": ("Reviews with open reports: hide them or restore them.", "Moderate"),
    "failed_payouts": ("Payouts the provider refused and that were not paid since.", "Open payments"),
    "failed_webhooks": ("Provider events that could not be processed.", "Open payments"),
    "failed_notifications": ("Emails and text messages that could not be delivered.", "Retry"),
    "pros_awaiting_verification": ("Active professionals without the verified badge.", "Verify"),
    "suspended_users": ("Accounts you suspended: reinstate them once it is settled.", "Review"),
}


def _waiting(days: int) -> str:
    return "today" if not days else f"waiting {days} day" + ("" if days == 1 else "s")


def _row_text(key: str, r: dict) -> tuple[str, str]:
    """A queue row as a title and a line of details (the service gives each row its link)."""
    if key == "disputes":
        return r["title"], f"{r['amount']} · {r['client']} and {r['pro']} · {_waiting(r['age_days'])}"
    if key == "reported_reviews":
        reports = f"{r['open_reports']} report" + ("" if r["open_reports"] == 1 else "s")
        reasons = f": {', '.join(r['reasons'])}" if r["reasons"] else ""
        return (f"{r['stars']}★ review of {r['subject']} by {r['author']}",
                f"{reports}{reasons} · {_waiting(r['age_days'])} · “{r['excerpt']}”")
    if key == "failed_payouts":
        return f"{r['amount']} to {r['pro']}", f"{r['title']} · failed {r['failed_at'][:10]}"
    if key == "failed_webhooks":
        order = f" · order #{r['order_id']}" if r["order_id"] else ""
        return (f"{r['provider']} {r['kind']}",
                f"{r['error'] or r['status']}{order} · {r['attempts']} attempts · {r['received_at'][:10]}")
    if key == "failed_notifications":
        return (r["subject"] or r["event"],
                f"{r['channel']} to {r['recipient']} · {r['error'] or 'failed'} · {str(r['created_at'])[:10]}")
    return r["name"], f"{r['email']} · joined {str(r['joined'])[:10]}"


@dataclasses.dataclass
class QueueRow:
    title: str
    details: str
    link: str


@dataclasses.dataclass
class QueueCard:
    key: str
    title: str
    about: str
    action: str
    empty: str
    link: str  # where the whole queue is worked through
    count: int
    rows: list[QueueRow]


def queue_cards(queues: OpsQueues) -> list[QueueCard]:
    cards = []
    for q in QUEUES:
        about, action = QUEUE_ABOUT.get(q.key, ("", "Open"))
        rows = [QueueRow(*_row_text(q.key, r), link=r["link"]) for r in getattr(queues, q.key)]
        cards.append(QueueCard(q.key, q.label, about, action, q.empty, q.link, queues.counts.get(q.key, len(rows)),
                               rows))
    return cards


class OperationsState(AppState):
    """/admin/operations: what needs the admin today, a card per queue."""

    queues: list[QueueCard] = []
    loaded: bool = False

    @rx.event
    @requires(Role.ADMIN)
    async def load(self, ctx: Ctx):
        self.loaded = False
        queues = await self._run(services().analytics.ops_queues, ctx.tenant, ctx.caller)
        self.queues = queue_cards(queues)
        self.loaded = True
        badge = await self.get_state(OpsBadgeState)
        badge.total = badge_total(queues.counts)


def badge_total(counts: dict[str, int]) -> int:
    """The nav's count: everything waiting for the admin (suspended users are settled, not waiting)."""
    return sum(v for k, v in counts.items() if k != "suspended_users")


class OpsBadgeState(AppState):
    """The admin nav's count on "Operations". Not guarded: it must never change what the page shows (`access`)."""

    total: int = 0

    @rx.event
    async def refresh(self, _value: str = ""):
        admitted = self._recently_admitted((Role.ADMIN,), 60)
        tenant, caller = (admitted.tenant, admitted.caller) if admitted else await self._identify()
        if tenant is None or caller is None or caller.role != Role.ADMIN:
            self.total = 0
            return
        self.total = badge_total(await self._run(services().analytics.ops_counts, tenant, caller))


# ------------------------------------------------------------------------------------------------ operator

# The operator console's table: a marketplace per row, these KPIs as columns (those the backend computes).
OPERATOR_COLUMNS: list[tuple[str, str]] = [
    ("gmv", "GMV"), ("net_revenue", "Net revenue"), ("take_rate", "Take rate"),
    ("orders_completed", "Orders completed"),
    ("disputes_opened", "Disputes"), ("dispute_rate", "Dispute rate"), ("active_clients_30", "Active clients (30 d)"),
    ("active_pros_30", "Active pros (30 d)"),
]


@dataclasses.dataclass
class KpiCell:
    value: str
    change: str  # "↑ 12.0%", "—"
    tone: str  # green | red | gray


@dataclasses.dataclass
class MarketplaceKpis:
    slug: str
    name: str
    status: str
    currency: str
    cells: list[KpiCell]


def operator_table(rows: list[TenantKpis]) -> tuple[list[str], list[MarketplaceKpis]]:
    """(column labels, one row per marketplace) for the KPIs every row has."""
    present = [(key, label) for key, label in OPERATOR_COLUMNS
               if rows and all(any(k.key == key for k in r.kpis) for r in rows)]
    table = []
    for r in rows:
        by_key = {k.key: k for k in r.kpis}
        cells = []
        for key, _ in present:
            k = by_key[key]
            change, tone, _spoken = _change(k.change_pct, k.better)
            cells.append(KpiCell(k.value, change, tone))
        table.append(MarketplaceKpis(r.slug, r.name, r.status, r.currency, cells))
    return [label for _, label in present], table


def operator_kpis(operator: Caller, preset: str) -> tuple[str, list[str], list[MarketplaceKpis]]:
    """The operator's overview for a preset range: (the period's label, column labels, rows)."""
    period = preset_period(preset)
    return (period.label, *operator_table(services().analytics.overview(operator, period)))
