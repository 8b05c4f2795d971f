"""The admin API's gate, its pure parts: which token is whose, which route needs which role."""

from __future__ import annotations

import pytest

from service.entrypoints.admin_gate import ANONYMOUS, Keyring, needed_role
from service.outbox.audit import Actor
from service.settings import AdminSettings, AdminToken

SETTINGS = AdminSettings.model_validate(
    {
        "token": "op-secret",
        "read_token": "read-secret",
        "tokens": {
            "ann": AdminToken.model_validate({"token": "ann-secret", "role": "operator"}),
            "bob": AdminToken.model_validate({"token": "bob-secret"}),  # reader by default
        },
    }
)


def test_each_token_is_its_name_and_role() -> None:
    keys = Keyring.of(SETTINGS.named_tokens())
    assert keys.identify("Bearer op-secret") == Actor("admin", "operator")
    assert keys.identify("Bearer read-secret") == Actor("reader", "reader")
    assert keys.identify("bearer ann-secret") == Actor("ann", "operator")  # scheme: any case
    assert keys.identify("Bearer bob-secret") == Actor("bob", "reader")
    for refused in (
        None,
        "",
        "Bearer",
        "Bearer ",
        "Basic op-secret",
        "Bearer op-secre",
        "op-secret",
    ):
        assert keys.identify(refused) is None, refused


def test_no_token_configured_is_open_as_anonymous_and_empty_ones_do_not_count() -> None:
    assert Keyring.of([]).identify(None) == ANONYMOUS
    empty = AdminSettings.model_validate({"token": "", "read_token": ""})
    assert empty.named_tokens() == []


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
        ("GET", "/", None),
        ("GET", "/docs", None),
        ("GET", "/static/app.js", None),
        ("GET", "/swagger-ui/swagger-ui.css", None),
        ("POST", "/healthz", None),  # open paths are open (405 from the app)
        ("GET", "/api/status", "reader"),
        ("HEAD", "/metrics", "reader"),
        ("GET", "/api/audit", "reader"),
        ("GET", "/openapi.json", "reader"),
        ("GET", "/nowhere", "reader"),  # an unknown route is no open door
        ("GET", "//api/status", "reader"),
        ("GET", "/static", "reader"),
        ("POST", "/api/commands/1/retry", "operator"),
        ("POST", "/api/held/approve", "operator"),
        ("DELETE", "/api/status", "operator"),
        ("OPTIONS", "/api/status", "operator"),
    ],
)
def test_the_role_a_route_needs(method: str, path: str, role: str | None) -> None:
    assert needed_role(method, path) == role
