"""Matching service: who a client finds. Today the public directory of professionals (ProDirectory); issue 11
grows it into search and ranking."""

from backend.matching.directory import ProDirectory

__all__ = ["ProDirectory"]
