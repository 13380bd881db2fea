"""What analytics reads of the other services' tables: SQLAlchemy Core mirrors of just the columns it needs.

Analytics never imports another service's models (orders have one writer; analytics only reads). These mirrors are
checked against `SQLModel.metadata` by tests/unit/test_analytics_sources.py, so a renamed column fails a test rather
than a dashboard. Core statements get no ORM tenant scoping: every query filters `tenant_id` itself (and on
PostgreSQL row-level security holds as well).

The dialect helpers at the bottom turn stored UTC timestamps into days and months the same way on PostgreSQL and
SQLite.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel.sql.sqltypes import UTCDateTime

_ID = sa.Integer


def _table(name: str, *columns: sa.ColumnClause) -> sa.TableClause:
    return sa.table(name, *columns)


def _col(name: str, type_=_ID) -> sa.ColumnClause:
    return sa.column(name, type_)


def _time(name: str) -> sa.ColumnClause:
    return sa.column(name, UTCDateTime())


def _text(name: str) -> sa.ColumnClause:
    return sa.column(name, sa.String)


service_order = _table("service_order", _col("id"), _col("tenant_id"), _col("client_id"), _col("pro_id"),
                       _col("request_id"), _col("quote_id"), _text("currency"), _time("created_at"))
order_event = _table("order_event", _col("id"), _col("tenant_id"), _col("order_id"), _text("from_state"),
                     _text("to_state"), _col("actor_id"), _text("actor_role"), _time("at"))
ledger_transaction = _table("ledger_transaction", _col("id"), _col("tenant_id"), _col("order_id"), _text("kind"),
                            _time("created_at"))
ledger_entry = _table("ledger_entry", _col("id"), _col("tenant_id"), _col("transaction_id"), _col("account_id"),
                      _col("amount_minor", sa.BigInteger), _text("currency"))
ledger_account = _table("ledger_account", _col("id"), _col("tenant_id"), _text("kind"), _text("currency"))
user_account = _table("user_account", _col("id"), _col("tenant_id"), _text("role"), _time("created_at"))
service_request = _table("service_request", _col("id"), _col("tenant_id"), _col("client_id"), _col("category_id"),
                         _text("city"), _text("status"), _time("created_at"))
quote = _table("quote", _col("id"), _col("tenant_id"), _col("request_id"), _col("pro_id"), _text("status"),
               _time("created_at"))
category = _table("category", _col("id"), _col("tenant_id"), _text("name"), _col("sort"))
pro_profile = _table("pro_profile", _col("user_id"), _col("tenant_id"), _text("city"))
pro_category = _table("pro_category", _col("user_id"), _col("tenant_id"), _col("category_id"))
# a platform table (read in the platform session): the marketplaces the operator's overview lists
tenant = _table("tenant", _col("id"), _text("slug"), _text("name"), _text("currency"), _text("status"),
                _time("created_at"))

MIRRORS = (service_order, order_event, ledger_transaction, ledger_entry, ledger_account, user_account,
           service_request, quote, category, pro_profile, pro_category, tenant)

# The append-only sources the rollups follow by id (their watermarks), with the time each row is attributed to.
WATCHED: dict[str, tuple[sa.TableClause, sa.ColumnClause]] = {
    "service_order": (service_order, service_order.c.created_at),
    "order_event": (order_event, order_event.c.at),
    "ledger_transaction": (ledger_transaction, ledger_transaction.c.created_at),
    "service_request": (service_request, service_request.c.created_at),
    "quote": (quote, quote.c.created_at),
    "user_account": (user_account, user_account.c.created_at),
}

# ledger kinds (backend/payments/ledger.py): transaction kinds and account kinds analytics reads
HOLD, RELEASE, REFUND = "hold", "release", "refund"
ESCROW, PLATFORM_FEES, REFUNDS = "escrow", "platform_fees", "refunds"
# order states and request/quote statuses analytics reads (backend/orders/models.py)
ORDER_STATES = ("requested", "accepted", "paid", "in_progress", "delivered", "completed", "cancelled", "expired",
                "disputed", "resolved")
PAID, COMPLETED, DISPUTED = "paid", "completed", "disputed"
REQUEST_OPEN = "open"
QUOTE_ACCEPTED = "accepted"
CLIENT, PROFESSIONAL = "client", "professional"


# ---------------------------------------------------------------------------------------------------- dialects
# Constants are inlined, not bound: PostgreSQL accepts a grouped expression in the select list only when it is the
# same SQL as in GROUP BY, and two bound parameters ($1, $2) are not.

_UTC = sa.literal_column("'UTC'", sa.String)
_TWELVE = sa.literal_column("12", sa.Integer)
_ONE = sa.literal_column("1", sa.Integer)


def day_of(dialect: str, ts: sa.ColumnElement) -> sa.ColumnElement:
    """The UTC calendar day of a stored timestamp, as a DATE (SQLite: 'YYYY-MM-DD', read back as a date)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(_UTC, ts), sa.Date)
    return sa.func.date(ts, type_=sa.Date)


def month_key(dialect: str, value: sa.ColumnElement, *, timestamp: bool) -> sa.ColumnElement:
    """year * 12 + month - 1 of a UTC timestamp or a date: consecutive months are consecutive integers."""
    if dialect == "postgresql":  # date_part is a float: much cheaper per row than EXTRACT's numeric
        value = sa.func.timezone(_UTC, value) if timestamp else value
        part = lambda field: sa.func.date_part(sa.literal_column(f"'{field}'"), value)  # noqa: E731
        return sa.cast(part("year") * _TWELVE + part("month") - _ONE, sa.Integer)
    year = sa.cast(sa.func.strftime(sa.literal_column("'%Y'"), value), sa.Integer)
    month = sa.cast(sa.func.strftime(sa.literal_column("'%m'"), value), sa.Integer)
    return year * _TWELVE + month - _ONE


def seconds_between(dialect: str, later: sa.ColumnElement, earlier: sa.ColumnElement) -> sa.ColumnElement:
    """Whole seconds from one stored timestamp to another."""
    if dialect == "postgresql":
        return sa.cast(sa.func.round(sa.extract("epoch", later - earlier)), sa.Integer)
    return sa.cast(sa.func.round((sa.func.julianday(later) - sa.func.julianday(earlier))
                                 * sa.literal_column("86400")), sa.Integer)
