import pytest

from zoning.errors import ConfigError
from zoning.model import default_text, load_default, loads


def test_default_model_is_valid():
    m = load_default()
    assert m.id == "zoning-default@2.0.0"
    assert "built_up_share" in m.indicators()


def test_every_problem_is_reported_with_its_key_path():
    text = default_text()
    text = text.replace("weight = 0.16", "weight = \"heavy\"", 1)        # wrong type
    text = text.replace("review_margin = 0.25", "review_margin = 0.25\nbogus_key = 1")  # unknown key
    text = text.replace("breaks = [0.05, 0.15, 0.30, 0.50]\nweight = 0.35",
                        "breaks = [0.05, 0.15, 0.30, 0.50]\nweight = 0.55")  # weights add to 1.2
    text = text.replace('when = "admin_type == \'FOREST\'"', 'when = "admin_typ == \'FOREST\'"')  # unknown name
    text = text.replace('indicator = "steep_share"', 'indicator = "steepness"')  # unknown indicator
    with pytest.raises(ConfigError) as err:
        loads(text, "bad.toml")
    problems = err.value.problems
    joined = "\n".join(problems)
    assert "functions.urbanization.terms.built_up.weight: expected number, got str" in joined
    assert "model.bogus_key: unknown key" in joined
    assert "functions.grain_production.terms: weights add up to 1.2, not 1" in joined
    assert "rules[2].when: unknown name 'admin_typ'" in joined
    assert "functions.ecological.terms.steep.indicator: unknown indicator 'steepness'" in joined
    assert "bad.toml: " in str(err.value)


def test_breaks_must_increase_and_be_four():
    text = default_text().replace("breaks = [1000.0, 2000.0, 3000.0, 4000.0]", "breaks = [1000.0, 900.0, 3000.0]")
    with pytest.raises(ConfigError, match="functions.ecological.terms.elevation.breaks: expected 4 numbers"):
        loads(text)


def test_expressions_cannot_call_functions():
    text = default_text().replace('when = "admin_type == \'FOREST\'"', 'when = "__import__(\'os\')"')
    with pytest.raises(ConfigError, match=r"rules\[2\].when: Call is not allowed"):
        loads(text)


def test_not_toml():
    with pytest.raises(ConfigError, match="not valid TOML"):
        loads("[model\nid=", "x.toml")
