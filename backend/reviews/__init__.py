"""Ratings & Reviews: two-way, double-blind reviews of ended orders, replies, moderation and ratings.

Others use what is exported here: the service and its views (rules.py says how reviewing works)."""

from backend.reviews.aggregates import RatingBadge, RatingSummary
from backend.reviews.rules import PRIOR_MEAN, PRIOR_REVIEWS, REMIND_BEFORE, bayesian_score
from backend.reviews.service import ReviewService
from backend.reviews.views import MyReviews, OrderReviews, PendingReview, ReportedReview, ReviewPage, ReviewView

__all__ = ["MyReviews", "OrderReviews", "PRIOR_MEAN", "PRIOR_REVIEWS", "PendingReview", "REMIND_BEFORE",
           "RatingBadge", "RatingSummary", "ReportedReview", "ReviewPage", "ReviewService", "ReviewView",
           "bayesian_score"]
