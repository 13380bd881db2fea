"""Double-entry ledger: every money movement is one balanced transaction, posted in the same database
transaction as the order transition that caused it.

Invariants, checked on every posting: each transaction sums to zero per currency; an order's escrow
never goes negative (so released + refunded never exceeds what was held).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from backend.errors import Conflict, DomainError
from backend.payments.models import LedgerAccount, LedgerEntry, LedgerTransaction


class LedgerError(DomainError):
    """A posting would break an invariant; nothing is written."""


def client_funding(client_id: int) -> tuple[str, str, int]:
    return f"client:{client_id}:funding", "client_funding", client_id


def escrow(order_id: int) -> tuple[str, str, int]:
    return f"escrow:order:{order_id}", "escrow", order_id


def platform_fees() -> tuple[str, str, None]:
    return "platform:fees", "platform_fees", None


def pro_payable(pro_id: int) -> tuple[str, str, int]:
    return f"pro:{pro_id}:payable", "pro_payable", pro_id


def pro_paid_out(pro_id: int) -> tuple[str, str, int]:
    return f"pro:{pro_id}:paid_out", "pro_paid_out", pro_id


def refunds(client_id: int) -> tuple[str, str, int]:
    return f"client:{client_id}:refunds", "refunds", client_id


@dataclass(frozen=True)
class Line:
    account: tuple[str, str, int | None]
    amount_minor: int


@dataclass(frozen=True)
class EntryRow:
    transaction_id: int
    kind: str
    account: str
    amount_minor: int
    currency: str
    memo: str
    created_at: str


class Ledger:
    def _account(self, session: Session, spec: tuple[str, str, int | None], currency: str) -> LedgerAccount:
        code, kind, party = spec
        query = select(LedgerAccount).where(LedgerAccount.code == code, LedgerAccount.currency == currency)
        account = session.exec(query).first()
        if account is None:
            # Concurrent first postings may create the same account: insert-if-absent, then read it back.
            dialect = session.get_bind().dialect.name
            insert = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(LedgerAccount)
            session.execute(insert.values(tenant_id=session.info["tenant_id"], code=code, kind=kind,
                                          party_id=party, currency=currency)
                            .on_conflict_do_nothing(index_elements=["tenant_id", "code", "currency"]))
            account = session.exec(query).one()
        return account

    def balance(self, session: Session, spec: tuple[str, str, int | None], currency: str) -> int:
        code = spec[0]
        total = session.exec(
            select(sa.func.coalesce(sa.func.sum(LedgerEntry.amount_minor), 0))
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerAccount.code == code, LedgerAccount.currency == currency)).one()
        return int(total)

    def post(self, session: Session, *, kind: str, currency: str, lines: list[Line], idempotency_key: str,
             order_id: int | None = None, memo: str = "", actor_id: int | None = None) -> LedgerTransaction:
        """Post one balanced transaction inside the caller's database transaction.
        A key already posted returns the earlier transaction (a retried step posts nothing twice)."""
        existing = session.exec(select(LedgerTransaction).where(
            LedgerTransaction.idempotency_key == idempotency_key)).first()
        if existing is not None:
            return existing
        lines = [line for line in lines if line.amount_minor != 0]
        if not lines:
            raise LedgerError("Nothing to post.")
        if sum(line.amount_minor for line in lines) != 0:
            raise LedgerError("Unbalanced ledger transaction refused.")
        tx = LedgerTransaction(order_id=order_id, kind=kind, idempotency_key=idempotency_key, memo=memo[:500],
                               actor_id=actor_id)
        session.add(tx)
        try:
            session.flush()
        except sa.exc.IntegrityError:
            raise Conflict("This payment step was already recorded.") from None
        for line in lines:
            account = self._account(session, line.account, currency)
            session.add(LedgerEntry(transaction_id=tx.id, account_id=account.id, amount_minor=line.amount_minor,
                                    currency=currency))
        session.flush()
        for line in lines:
            if line.account[1] == "escrow" and self.balance(session, line.account, currency) < 0:
                raise LedgerError("That is more than the money held for this order.")
        return tx

    def entries(self, session: Session, *, order_id: int | None = None, account_prefix: str = "",
                limit: int = 200) -> list[EntryRow]:
        query = (select(LedgerEntry, LedgerTransaction, LedgerAccount)
                 .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
                 .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                 .order_by(LedgerTransaction.created_at.desc(), LedgerEntry.id).limit(limit))
        if order_id is not None:
            query = query.where(LedgerTransaction.order_id == order_id)
        if account_prefix:
            query = query.where(LedgerAccount.code.startswith(account_prefix))
        return [EntryRow(transaction_id=t.id, kind=t.kind, account=a.code, amount_minor=e.amount_minor,
                         currency=e.currency, memo=t.memo, created_at=t.created_at.strftime("%b %d, %Y %H:%M"))
                for e, t, a in session.exec(query).all()]

    def check_invariants(self, session: Session) -> list[str]:
        """Problems found across the whole tenant ledger (empty = healthy)."""
        problems = []
        unbalanced = session.exec(
            select(LedgerEntry.transaction_id, LedgerEntry.currency)
            .group_by(LedgerEntry.transaction_id, LedgerEntry.currency)
            .having(sa.func.sum(LedgerEntry.amount_minor) != 0)).all()
        problems += [f"transaction {t} does not balance in {c}" for t, c in unbalanced]
        negative = session.exec(
            select(LedgerAccount.code, sa.func.sum(LedgerEntry.amount_minor))
            .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
            .where(LedgerAccount.kind == "escrow").group_by(LedgerAccount.code)
            .having(sa.func.sum(LedgerEntry.amount_minor) < 0)).all()
        problems += [f"{code} is negative ({amount})" for code, amount in negative]
        return problems
