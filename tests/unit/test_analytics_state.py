"""How state/analytics.py shapes the analytics views for the pages: a KPI's change coloured by which way is good
news, tables sorted with missing values last, the cohort heatmap's shades, the queues' rows, the operator's table
with only the KPIs every marketplace has, and the range presets."""

from __future__ import annotations

from backend.analytics import KpiValue, Period, TenantKpis
from backend.analytics.operations import QUEUES, OpsQueues
from state.analytics import (PRESETS, _change, _series_summary, badge_total, cohort_rows, operator_table,
                             preset_period, queue_cards, sort_rows, today)


def kpi(key: str, value: str, change: float | None, better: str = "up") -> KpiValue:
    return KpiValue(key=key, label=key.upper(), value=value, raw=0, previous="1", change_pct=change, better=better,
                    hint="")


def test_a_change_is_green_when_it_goes_the_good_way():
    assert _change(12.34, "up")[:2] == ("↑ 12.3%", "green")
    assert _change(-5.0, "up")[:2] == ("↓ 5.0%", "red")
    assert _change(4.0, "down")[:2] == ("↑ 4.0%", "red")  # more refunds is bad news
    assert _change(-4.0, "down")[:2] == ("↓ 4.0%", "green")
    assert _change(None, "up")[:2] == ("—", "gray")
    assert _change(0.0, "up")[:2] == ("→ 0%", "gray")
    assert _change(-5.0, "up")[2] == "down 5.0% on the previous period"


def test_sorting_puts_missing_values_last_and_ignores_case():
    rows = [{"category": "plumbing", "n": 3}, {"category": "Cleaning", "n": None}, {"category": "electrical", "n": 7}]
    assert [r["category"] for r in sort_rows(rows, "category", False)] == ["Cleaning", "electrical", "plumbing"]
    assert [r["n"] for r in sort_rows(rows, "n", True)] == [7, 3, None]
    assert [r["n"] for r in sort_rows(rows, "n", False)] == [3, 7, None]


def test_cohort_cells_are_shaded_by_their_share_of_the_largest():
    months = {f"m{k}": None for k in range(12)}
    rows = cohort_rows([{"cohort": "2025-01", "clients": 10, **months, "m0": 50.0, "m1": 10.0, "m2": 0.0}])
    row = rows[0]
    assert (row["cohort"], row["clients"], row["m0"], row["m1"], row["m3"]) == ("2025-01", "10", "50.0%", "10.0%", "—")
    assert "70%" in row["m0_bg"] and row["m0_fg"] == "white"  # the largest share: the strongest shade
    assert "20%" in row["m1_bg"] and row["m1_fg"] == "var(--gray-12)"
    assert "8%" in row["m2_bg"] and row["m3_bg"] == "transparent"


def test_queue_rows_read_as_a_title_and_details_with_the_services_link():
    empty = {q.key: [] for q in QUEUES}
    queues = OpsQueues(**{**empty, "disputes": [{
        "order_id": 7, "title": "Leaky tap", "client": "Alice", "pro": "Diego", "amount": "$120.00",
        "amount_minor": 12000, "currency": "USD", "disputed_at": "2025-01-01T00:00:00+00:00", "age_days": 3,
        "link": "/orders/7"}]}, counts={**{q.key: 0 for q in QUEUES}, "disputes": 25, "suspended_users": 2},
        generated_at="2025-01-04T00:00:00+00:00")
    cards = {c.key: c for c in queue_cards(queues)}
    assert list(cards) == [q.key for q in QUEUES]
    disputes = cards["disputes"]
    assert (disputes.count, disputes.action, disputes.rows[0].link) == (25, "Resolve", "/orders/7")
    assert disputes.rows[0].title == "Leaky tap"
    assert disputes.rows[0].details == "$120.00 · Alice and Diego · waiting 3 days"
    assert badge_total(queues.counts) == 25  # suspended users are settled, not waiting


def test_the_operator_table_shows_the_kpis_every_marketplace_has():
    rows = [TenantKpis(tenant_id=1, slug="demo", name="Demo", status="active", currency="USD",
                       kpis=[kpi("gmv", "$10.00", 50.0), kpi("take_rate", "10.0%", None)]),
            TenantKpis(tenant_id=2, slug="acme", name="Acme", status="active", currency="EUR",
                       kpis=[kpi("gmv", "€0.00", None), kpi("take_rate", "—", None), kpi("net_revenue", "€0", None)])]
    columns, table = operator_table(rows)
    assert columns == ["GMV", "Take rate"]
    assert [(c.value, c.change, c.tone) for c in table[0].cells] == [("$10.00", "↑ 50.0%", "green"),
                                                                     ("10.0%", "—", "gray")]
    assert table[1].slug == "acme" and [c.value for c in table[1].cells] == ["€0.00", "—"]


def test_presets_are_the_backends_periods_ending_today():
    assert [label for _, label, _ in PRESETS] == list(Period.PRESETS)
    assert preset_period("7-days") == Period.last(7, today())
    assert preset_period("12-months").days == 365


def test_the_gmv_chart_in_words_shows_money_as_the_app_does():
    series = [{"day": "2025-01-01", "gmv": 1234.5, "fees": 123.45, "orders": 2, "signups": 1},
              {"day": "2025-01-02", "gmv": 0.0, "fees": 0.0, "orders": 0, "signups": 0}]
    assert _series_summary(series, "USD") == ("Over 2 days: GMV $1,234.50 and platform fees $123.45 in total; the "
                                              "busiest day was 2025-01-01 ($1,234.50).")
    assert _series_summary([{**series[1], "gmv": 1500.0}], "JPY").startswith("Over 1 day: GMV ¥1,500 ")
