"""Every table, imported so that SQLModel.metadata is complete (Alembic autogenerate, test schemas)."""

from backend.analytics.models import (AnalyticsActorDay, AnalyticsClientDay, AnalyticsDaily, AnalyticsFunnelDay,
                                      AnalyticsRequest, AnalyticsWatermark)
from backend.accounts.models import (
    AuthSession, LoginAttempt, OneTimeToken, OperatorAccount, OperatorSession, PhoneVerification, User,
)
from backend.chat.models import Conversation, ConversationRead
from backend.notifications.models import (EmailSuppression, Notification, NotificationPreference, PushSubscription,
                                          SmsSuppression)
from backend.catalog.models import Category
from backend.orders.models import LeadDecline, LeadMatch, Order, OrderEvent, Quote, ServiceRequest
from backend.payments.models import (
    DemoCharge, LedgerAccount, LedgerEntry, LedgerTransaction, Payment, Payout, PayoutAccountLink, WebhookEvent,
)
from backend.profiles.models import PortfolioImage, ProCategory, ProProfile, Profile
from backend.reviews.models import RatingAggregate, Review, ReviewModeration, ReviewReport, ReviewWindow
from backend.tenancy.models import Tenant

__all__ = ["AnalyticsActorDay", "AnalyticsClientDay", "AnalyticsDaily", "AnalyticsFunnelDay", "AnalyticsRequest", "AnalyticsWatermark", "AuthSession", "Category", "Conversation", "ConversationRead", "DemoCharge", "EmailSuppression", "LedgerAccount", "LedgerEntry", "LedgerTransaction", "Payment",
           "Payout", "PayoutAccountLink", "WebhookEvent", "LeadDecline", "LeadMatch", "LoginAttempt", "Notification", "NotificationPreference",
           "OneTimeToken",
           "OperatorAccount", "OperatorSession", "Order", "OrderEvent", "PhoneVerification", "PortfolioImage", "ProCategory",
           "ProProfile", "Profile", "PushSubscription", "Quote", "RatingAggregate", "Review", "ReviewModeration", "ReviewReport",
           "ReviewWindow", "ServiceRequest", "SmsSuppression", "Tenant", "User"]
