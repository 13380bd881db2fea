"""Which tenant a request is for, from its host name."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit


def tenant_slug_for_host(host: str, *, base_domain: str, default_tenant: str) -> str | None:
    """`acme.localhost:3000` -> "acme"; `localhost` or an IP -> the default tenant.

    Returns None for a host that belongs to no tenant (another domain, nested subdomains).
    """
    hostname = (host or "").strip().lower()
    if hostname.startswith("["):  # [::1]:3000
        hostname = hostname[1 : hostname.find("]")]
    elif hostname.count(":") == 1:
        hostname = hostname.split(":", 1)[0]
    hostname = hostname.rstrip(".")
    if not hostname:
        return None
    try:
        ipaddress.ip_address(hostname)
        return default_tenant
    except ValueError:
        pass
    base = base_domain.lower().strip(".")
    if hostname == base or hostname == f"www.{base}":
        return default_tenant
    suffix = f".{base}"
    if hostname.endswith(suffix):
        slug = hostname[: -len(suffix)]
        if slug and "." not in slug:
            return slug
    return None


def tenant_url(public_url: str, slug: str, default_tenant: str, path: str) -> str:
    """Absolute URL of `path` on the tenant's own host (used in emails)."""
    parts = urlsplit(public_url)
    netloc = parts.netloc
    if slug != default_tenant:
        netloc = f"{slug}.{netloc.removeprefix('www.')}"
    return urlunsplit((parts.scheme, netloc, path, "", ""))
