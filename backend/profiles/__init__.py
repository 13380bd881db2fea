"""User Profile service: everyone's basic profile (ProfileService) and a professional's own profile (ProService).

Services above profiles use what is exported here: the views, and `ensure_pro_profile`/`pro_view` to show a
professional (the directory in backend/matching, the admin's verified badge in backend/accounts)."""

from backend.profiles.models import WEEKDAYS, ProfileView
from backend.profiles.pros import MAX_PORTFOLIO, PortfolioItem, ProService, ProView, ensure_pro_profile, pro_view
from backend.profiles.service import ProfileService

__all__ = ["MAX_PORTFOLIO", "WEEKDAYS", "PortfolioItem", "ProService", "ProView", "ProfileService", "ProfileView",
           "ensure_pro_profile", "pro_view"]
