"""After login the browser goes back where it came from, but only to a path on this site (no open redirect)."""

import pytest

from state.auth import _safe_next


@pytest.mark.parametrize("path", ["/client", "/orders/7", "/requests/3?tab=quotes", "/messages/2#latest"])
def test_paths_on_this_site_are_kept(path):
    assert _safe_next(path, "/home") == path


@pytest.mark.parametrize("path", [
    "", "client", "https://evil.example/", "//evil.example", "/\\evil.example", "/\\/evil.example",
    "/\t/evil.example", "/\n/evil.example", "javascript:alert(1)", "\\\\evil.example", "/%0a/x\x7f",
])
def test_anything_that_could_leave_the_site_goes_home(path):
    assert _safe_next(path, "/home") == "/home"
