"""The licence policy: a TOML file, tenant rules before global ones, first match wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.intake.licences import LicencePolicy, PolicyError

POLICY = """
default_apps = ["vc"]

[[rules]]
department = "Sales"
apps = ["wb", "vc"]

[[rules]]
title = "*Director*"
apps = ["wb"]

[[rules]]
department = "Contract?rs"
title = "Temp*"
apps = []

[tenants."CRM-1002"]
default_apps = ["vc", "wb"]

[[tenants."CRM-1002".rules]]
department = "Sales"
apps = ["vc"]

[tenants."CRM-1003"]

[[tenants."CRM-1003".rules]]
title = "intern"
apps = []
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "licences.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def policy(tmp_path: Path) -> LicencePolicy:
    return LicencePolicy.load(write(tmp_path, POLICY))


def test_no_file_gives_everyone_vc() -> None:
    assert LicencePolicy.load(None).apps_for("CRM-1", "Sales", "Director") == ("vc",)


def test_empty_file_gives_everyone_vc(tmp_path: Path) -> None:
    assert LicencePolicy.load(write(tmp_path, "")).apps_for("CRM-1", None, None) == ("vc",)


def test_first_matching_rule_wins_and_apps_come_in_a_fixed_order(policy: LicencePolicy) -> None:
    # Sales matches the first rule and the Director rule; the first one wins
    assert policy.apps_for("CRM-1", "Sales", "Sales Director") == ("vc", "wb")
    assert policy.apps_for("CRM-1", "Finance", "Finance Director") == ("wb",)


def test_glob_and_case_insensitive(policy: LicencePolicy) -> None:
    assert policy.apps_for("CRM-1", "sales", None) == ("vc", "wb")
    assert policy.apps_for("CRM-1", "SALES", None) == ("vc", "wb")
    assert policy.apps_for("CRM-1", None, "regional director of ops") == ("wb",)
    assert policy.apps_for("CRM-1", "Contractors", "temp worker") == ()
    assert policy.apps_for("CRM-1", "Contracters", "TEMP") == ()
    # both fields of a rule must match; the glob is anchored
    assert policy.apps_for("CRM-1", "Contractors", "Permanent") == ("vc",)
    assert policy.apps_for("CRM-1", "Sales Ops", None) == ("vc",)
    assert policy.apps_for("CRM-1", "Presales", None) == ("vc",)


def test_a_rule_on_a_field_the_employee_lacks_does_not_match(policy: LicencePolicy) -> None:
    assert policy.apps_for("CRM-1", None, None) == ("vc",)


def test_tenant_rules_come_before_global_rules(policy: LicencePolicy) -> None:
    assert policy.apps_for("CRM-1002", "Sales", None) == ("vc",)  # its own Sales rule
    assert policy.apps_for("CRM-1", "Sales", None) == ("vc", "wb")  # the global one
    assert policy.apps_for("CRM-1003", None, "Intern") == ()


def test_global_rules_still_apply_to_a_tenant_with_its_own(policy: LicencePolicy) -> None:
    assert policy.apps_for("CRM-1002", "Finance", "CFO and Director") == ("wb",)
    assert policy.apps_for("CRM-1003", "Sales", None) == ("vc", "wb")


def test_tenant_default_then_global_default(policy: LicencePolicy) -> None:
    assert policy.apps_for("CRM-1002", "Finance", "Analyst") == ("vc", "wb")
    assert policy.apps_for("CRM-1003", "Finance", "Analyst") == ("vc",)  # no own default
    assert policy.apps_for("CRM-9999", "Finance", "Analyst") == ("vc",)


def test_global_default_may_be_nothing(tmp_path: Path) -> None:
    policy = LicencePolicy.load(write(tmp_path, "default_apps = []\n"))
    assert policy.apps_for("CRM-1", "Sales", None) == ()


def test_duplicate_apps_are_given_once(tmp_path: Path) -> None:
    policy = LicencePolicy.load(write(tmp_path, 'default_apps = ["wb", "vc", "wb"]\n'))
    assert policy.apps_for("CRM-1", None, None) == ("vc", "wb")


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('default_app = ["vc"]\n', "line 1: default_app: unknown key"),
        ('[[rules]]\ndepartment = "Sales"\napp = ["vc"]\n', "line 3: rules[0].app: unknown key"),
        ('[[rules]]\ndepartment = "Sales"\nteam = "x"\napps = ["vc"]\n', "line 3: rules[0].team"),
        ('[tenants."CRM-1"]\ndefaults = ["vc"]\n', "line 2: tenants.CRM-1.defaults"),
        ('default_apps = ["vc", "zoom"]\n', "line 1: default_apps[1]: Input should be"),
        ('[[rules]]\ndepartment = "Sales"\n', "line 1: rules[0].apps: missing"),
    ],
)
def test_unknown_keys_and_bad_values_are_rejected(tmp_path: Path, text: str, said: str) -> None:
    with pytest.raises(PolicyError) as caught:
        LicencePolicy.load(write(tmp_path, text))
    message = str(caught.value)
    assert message.startswith(f"licence policy {tmp_path / 'licences.toml'} {said}")
    assert "\n" not in message


def test_not_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not TOML"):
        LicencePolicy.load(write(tmp_path, "default_apps = [\n"))
    with pytest.raises(PolicyError, match="No such file"):
        LicencePolicy.load(tmp_path / "absent.toml")
    assert issubclass(PolicyError, ValueError)
