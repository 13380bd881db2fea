"""The payment providers registered on this installation (bootstrap.make_gateways), looked up fail-closed."""

from __future__ import annotations

import logging

from backend.errors import DomainError, NotFound
from backend.identity import TenantPublic
from backend.payments.ports import PaymentGateway
from backend.payments.providers import CANNOT_TAKE_PAYMENTS

log = logging.getLogger(__name__)


class Gateways:
    """Lookups over the registered gateways. `registered` is the very dict PaymentService.gateways names, so a
    gateway swapped in there (a test's fake provider) is the one every part of payments uses."""

    def __init__(self, registered: dict[str, PaymentGateway]):
        self.registered = registered

    def names(self) -> list[str]:
        return list(self.registered)

    def can_take_payments(self, tenant: TenantPublic) -> bool:
        return bool(tenant.payment_provider) and tenant.payment_provider in self.registered

    def for_tenant(self, tenant: TenantPublic) -> PaymentGateway:
        """The tenant's own provider, or a refusal: never another provider in its place (fail closed)."""
        gateway = self.registered.get(tenant.payment_provider) if tenant.payment_provider else None
        if gateway is None:
            log.error("tenant %s (%s) cannot take payments: its provider %r is not configured here",
                      tenant.id, tenant.slug, tenant.payment_provider)
            raise DomainError(CANNOT_TAKE_PAYMENTS)
        return gateway

    def named(self, name: str) -> PaymentGateway:
        """The provider a payment went through (it may no longer be the tenant's choice)."""
        gateway = self.registered.get(name)
        if gateway is None:
            raise DomainError(f"The {name or 'chosen'} payment provider is not configured on this installation; "
                              "no money was moved.")
        return gateway

    def demo(self):
        """The test-card gateway, where it exists (development only): its hosted page is served by this app."""
        gateway = self.registered.get("demo")
        if gateway is None:
            raise NotFound("Test-mode checkout is not available on this installation.")
        return gateway
