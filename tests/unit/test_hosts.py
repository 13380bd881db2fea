import pytest

from backend.tenancy.hosts import tenant_slug_for_host, tenant_url


@pytest.mark.parametrize(("host", "slug"), [
    ("acme.localhost:3000", "acme"),
    ("ACME.localhost", "acme"),
    ("localhost:3000", "demo"),
    ("localhost", "demo"),
    ("www.localhost", "demo"),
    ("127.0.0.1:3000", "demo"),
    ("[::1]:3000", "demo"),
    ("a.b.localhost", None),
    ("evil.com", None),
    ("acme.localhost.evil.com", None),
    ("", None),
])
def test_tenant_slug_for_host(host, slug):
    assert tenant_slug_for_host(host, base_domain="localhost", default_tenant="demo") == slug


def test_tenant_url_uses_subdomain_except_for_default():
    assert tenant_url("http://localhost:3000", "acme", "demo", "/reset?token=x") == "http://acme.localhost:3000/reset?token=x"
    assert tenant_url("http://localhost:3000", "demo", "demo", "/verify") == "http://localhost:3000/verify"
    assert tenant_url("https://www.market.com", "acme", "demo", "/") == "https://acme.market.com/"
