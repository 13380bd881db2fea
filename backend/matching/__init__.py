"""Matching service: who a client finds (search and ranking of professionals), which pros a new request reaches
first (instant match), open requests for pros browsing work, and the index that keeps all of it fast."""

from backend.matching.directory import ProDirectory
from backend.matching.service import MatchingService

__all__ = ["MatchingService", "ProDirectory"]
