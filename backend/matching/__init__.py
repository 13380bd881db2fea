"""Matching service: who a client finds (search and ranking of professionals, their public page), which pros a new
request reaches first (instant match), open requests for pros browsing work, and the index that keeps it fast."""

from backend.matching.forms import DEFAULT_RADIUS_KM
from backend.matching.ports import Sort
from backend.matching.service import MatchingService
from backend.matching.views import CategoryFacet, Consistency, ProCard, SearchPage

__all__ = ["DEFAULT_RADIUS_KM", "CategoryFacet", "Consistency", "MatchingService", "ProCard", "SearchPage", "Sort"]
