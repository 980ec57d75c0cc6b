import pytest

from zoning.errors import ConfigError
from zoning.rules import defaults, loads


def test_override_key_by_key():
    r = loads("[rules]\nsliver_m2 = 5\n[checks.construction_on_farmland]\ncritical_mu = 10\n")
    assert r["rules"]["sliver_m2"] == 5.0
    assert r["checks"]["construction_on_farmland"]["critical_mu"] == 10.0
    assert r["checks"]["construction_on_farmland"]["severity"] == defaults()["checks"]["construction_on_farmland"][
        "severity"]


def test_unknown_keys_and_wrong_types_are_all_named():
    with pytest.raises(ConfigError) as err:
        loads('[rules]\nsliver = 5\narea_method = "degrees"\n[checks.construction_in_red_line]\nseverity = "fatal"\n'
              '[checks.construction_on_farmland]\ncritical_mu = "five"\n', "my.toml")
    text = str(err.value)
    assert "rules.sliver: unknown key" in text
    assert "rules.area_method: expected 'albers' or 'geodesic'" in text
    assert "checks.construction_in_red_line.severity: expected one of critical" in text
    assert "checks.construction_on_farmland.critical_mu: expected a number, got str" in text
    assert text.startswith("my.toml: 4 problem(s)")
