"""What the catalog schedules after commit: a category's name is in every search document of its professionals,
so renaming or (de)activating one has the search index rebuilt for the marketplace (backend/matching, far above
this package, runs the job)."""

from __future__ import annotations

from typing import Protocol


class CatalogJobs(Protocol):
    def reindex_tenant(self, tenant_id: int) -> None:
        """Rebuild the marketplace's search documents from the database. Called only after commit."""
        ...
