"""What orders know about a professional, for their search document (matching's `ProSignals` port).

- completed_jobs: their orders in state completed.
- response_rate: the share of their leads they answered, quoted or declined; None before their first lead.
  A lead is a service request that reached the pro's leads inbox (QuoteService's rule): posted after the pro
  joined, in one of their categories, within their service radius of the pro (or, when either has no
  coordinates, in the same city), not their own, whatever became of it since. Requests they answered count as
  leads too (an answer proves it reached them, even if they have since moved or changed categories).
  A lead counts from the moment it is posted: the matching service refreshes the documents of the pros a new
  request reaches when it indexes that request, so the stored rate never waits for an event of the pro's own.
- median_quote_minutes: the median time from a request being posted to this pro's quote on it; None before their
  first quote.
- last_quote_at: their latest quote (last active is the latest of this, a login and a profile edit).

Six queries for any number of pros (profiles, categories, candidate requests, quotes, declines, completed orders);
distances are computed here with the leads inbox's rule (matching.documents.serves).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session, select

from backend.accounts.models import User
from backend.matching.documents import serves
from backend.orders.models import LeadDecline, Order, OrderState, Quote, ServiceRequest
from backend.profiles.models import ProCategory, ProProfile


class OrderSignals:
    def pro_signals(self, session: Session, pro_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        ids = sorted(set(pro_ids))
        if not ids:
            return {}
        pros = {row.user_id: row for row in session.exec(
            select(ProProfile.user_id, ProProfile.latitude, ProProfile.longitude, ProProfile.radius_km,
                   ProProfile.city, User.created_at.label("joined"))
            .join(User, User.id == ProProfile.user_id).where(ProProfile.user_id.in_(ids))).all()}
        categories: dict[int, set[int]] = defaultdict(set)
        for user_id, category_id in session.exec(select(ProCategory.user_id, ProCategory.category_id)
                                                 .where(ProCategory.user_id.in_(ids))).all():
            categories[user_id].add(category_id)
        answered: dict[int, set[int]] = defaultdict(set)
        quote_minutes: dict[int, list[float]] = defaultdict(list)
        last_quote: dict[int, Any] = {}
        for pro_id, request_id, quoted_at, posted_at in session.exec(
                select(Quote.pro_id, Quote.request_id, Quote.created_at, ServiceRequest.created_at)
                .join(ServiceRequest, ServiceRequest.id == Quote.request_id).where(Quote.pro_id.in_(ids))).all():
            answered[pro_id].add(request_id)
            quote_minutes[pro_id].append(max(0.0, (quoted_at - posted_at).total_seconds() / 60))
            last_quote[pro_id] = max(last_quote.get(pro_id, quoted_at), quoted_at)
        for pro_id, request_id in session.exec(select(LeadDecline.pro_id, LeadDecline.request_id)
                                               .where(LeadDecline.pro_id.in_(ids))).all():
            answered[pro_id].add(request_id)
        leads: dict[int, set[int]] = {pro_id: set(answered[pro_id]) for pro_id in ids}
        all_categories = set().union(*categories.values()) if categories else set()
        if pros and all_categories:
            since = min(p.joined for p in pros.values())
            requests = session.exec(
                select(ServiceRequest.id, ServiceRequest.category_id, ServiceRequest.client_id,
                       ServiceRequest.latitude, ServiceRequest.longitude, ServiceRequest.city,
                       ServiceRequest.created_at)
                .where(ServiceRequest.category_id.in_(all_categories), ServiceRequest.created_at >= since)).all()
            pros_of: dict[int, list[int]] = defaultdict(list)
            for pro_id in pros:
                for category_id in categories[pro_id]:
                    pros_of[category_id].append(pro_id)
            for request in requests:
                for pro_id in pros_of[request.category_id]:
                    pro = pros[pro_id]
                    if (request.created_at >= pro.joined and request.client_id != pro_id
                            and serves(pro, request.latitude, request.longitude, request.city)):
                        leads[pro_id].add(request.id)
        completed = dict(session.exec(select(Order.pro_id, sa.func.count(Order.id))
                                      .where(Order.pro_id.in_(ids), Order.state == OrderState.COMPLETED)
                                      .group_by(Order.pro_id)).all())
        out: dict[int, dict[str, Any]] = {}
        for pro_id in ids:
            received = len(leads[pro_id])
            out[pro_id] = {
                "completed_jobs": int(completed.get(pro_id, 0)),
                "response_rate": round(len(answered[pro_id]) / received, 4) if received else None,
                "median_quote_minutes": round(statistics.median(quote_minutes[pro_id]))
                if quote_minutes[pro_id] else None,
                "last_quote_at": last_quote.get(pro_id),
            }
        return out
