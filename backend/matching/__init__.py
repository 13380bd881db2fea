"""Matching service: who a client finds (search and ranking of professionals, their public page), which pros a new
request reaches first (instant match), open requests for pros browsing work, and the index that keeps it fast."""

from backend.matching.service import MatchingService

__all__ = ["MatchingService"]
