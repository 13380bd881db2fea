"""Open service requests as search documents: orders' side of matching's `RequestSource` port.

The matching service sits below orders and cannot read orders' tables; bootstrap hands it this source. Its index
job (`index_request`) asks for one request's document after a request is posted, closed, expired or its quote
accepted, and upserts it or, when the source answers None, removes it: so only open, unexpired requests are ever
found by professionals browsing work.
"""

from __future__ import annotations

from sqlmodel import Session, select

from backend.catalog.models import Category
from backend.db import Database, utcnow
from backend.matching.ports import RequestDocument, fingerprinted
from backend.orders.models import RequestStatus, ServiceRequest


def _document(request: ServiceRequest, category_name: str) -> RequestDocument:
    return fingerprinted(RequestDocument(
        tenant_id=request.tenant_id, request_id=request.id, client_id=request.client_id, title=request.title,
        description=request.description, category_id=request.category_id, category_name=category_name,
        city=request.city, latitude=request.latitude, longitude=request.longitude,
        budget_min_minor=request.budget_min_minor, budget_max_minor=request.budget_max_minor,
        currency=request.currency, preferred_start=request.preferred_start, created_at=request.created_at,
        expires_at=request.expires_at))


def _category_names(session: Session, category_ids: set[int]) -> dict[int, str]:
    if not category_ids:
        return {}
    return dict(session.exec(select(Category.id, Category.name).where(Category.id.in_(category_ids))).all())


class OrderRequestSource:
    """Implements backend.matching.ports.RequestSource."""

    def __init__(self, db: Database):
        self.db = db

    def request_document(self, tenant_id: int, request_id: int) -> RequestDocument | None:
        with self.db.tenant_session(tenant_id) as session:
            request = session.get(ServiceRequest, request_id)
            # open but past its expiry (the timer has not run yet): already out of professionals' leads
            if request is None or request.status != RequestStatus.OPEN or request.expires_at <= utcnow():
                return None
            return _document(request, _category_names(session, {request.category_id}).get(request.category_id, ""))

    def open_request_documents(self, tenant_id: int) -> list[RequestDocument]:
        with self.db.tenant_session(tenant_id) as session:
            requests = session.exec(select(ServiceRequest).where(ServiceRequest.status == RequestStatus.OPEN,
                                                                 ServiceRequest.expires_at > utcnow())
                                    .order_by(ServiceRequest.id)).all()
            names = _category_names(session, {r.category_id for r in requests})
            return [_document(r, names.get(r.category_id, "")) for r in requests]
