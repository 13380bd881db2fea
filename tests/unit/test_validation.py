import pytest

from backend.accounts.models import SignUp
from backend.errors import ValidationFailed
from backend.tenancy.models import TenantCreate
from backend.validation import parse_input


def signup(**over):
    data = {"email": "a@b.com", "password": "long-enough-pw", "full_name": "Ann Lee", "role": "client"} | over
    return parse_input(SignUp, data)


def errors_of(**over) -> dict:
    with pytest.raises(ValidationFailed) as exc:
        signup(**over)
    return exc.value.errors


def test_valid_signup_is_normalised():
    form = signup(email="  Ann@Example.COM ", full_name="  Ann   Lee ")
    assert form.email == "ann@example.com"
    assert form.full_name == "Ann Lee"


@pytest.mark.parametrize("email", ["", "not-an-email", "a@", "@b.com", "a b@c.com", "x" * 250 + "@b.com"])
def test_invalid_email(email):
    assert "email" in errors_of(email=email)


def test_short_password_says_ten_characters():
    assert errors_of(password="short")["password"] == "Password must be at least 10 characters"


def test_overlong_fields():
    errs = errors_of(full_name="x" * 81, password="p" * 201)
    assert "at most 80" in errs["full_name"]
    assert "at most 200" in errs["password"]


def test_only_public_roles_can_sign_up():
    assert "role" in errors_of(role="admin")
    assert "role" in errors_of(role="operator")


@pytest.mark.parametrize(("field", "value"), [("slug", "Bad Slug!"), ("slug", "admin"), ("primary_color", "blue"),
                                               ("currency", "XYZ"), ("platform_fee_percent", 80)])
def test_tenant_create_rejects(field, value):
    data = {"slug": "ok", "name": "Ok", "admin_email": "a@b.com", "admin_password": "x" * 12, field: value}
    with pytest.raises(ValidationFailed) as exc:
        parse_input(TenantCreate, data)
    assert field in exc.value.errors
