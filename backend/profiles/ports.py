"""What profiles (and the services above them: accounts, orders, reviews) schedule for the search index.

The index itself is the matching service's (`backend/matching`), which sits above these packages; they only
ask for a document to be rebuilt after they commit a change that affects it. The job reads the database
again and either upserts the document or removes it (an ineligible pro, a closed request), so it is
idempotent and may run twice or late.
"""

from __future__ import annotations

from typing import Protocol


class SearchIndexJobs(Protocol):
    def index_pro(self, tenant_id: int, pro_id: int) -> None:
        """Rebuild this professional's search document (or remove it). Called only after commit."""
        ...

    def index_request(self, tenant_id: int, request_id: int) -> None:
        """Rebuild this open request's search document (or remove it). Called only after commit."""
        ...
