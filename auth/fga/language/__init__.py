"""OpenFGA's model language (DSL, schema 1.1): parse to OpenFGA's JSON model, and validate models.

- `dsl_to_json(text)`: OpenFGA's JSON model for a DSL text, as OpenFGA's transformer gives it;
  raises `DSLSyntaxError` (`.errors`: `DSLIssue`s with 1-based line and column).
- `json_to_dsl(model)`: the DSL text for a JSON model, as OpenFGA writes it.
- `compact(model)`: the model without protobuf JSON's empty fields, as `fga` prints it.
- `validate_model(model)`: raises `ModelValidationError` (an `FGAError` with OpenFGA's code and
  message) where OpenFGA's WriteAuthorizationModel would refuse the model.
"""

from auth.fga.language.errors import DSLIssue, DSLSyntaxError, ModelValidationError
from auth.fga.language.parser import dsl_to_json
from auth.fga.language.protojson import compact
from auth.fga.language.to_dsl import DSLConversionError, json_to_dsl
from auth.fga.language.validation import validate_model

__all__ = [
    "DSLConversionError",
    "DSLIssue",
    "DSLSyntaxError",
    "ModelValidationError",
    "compact",
    "dsl_to_json",
    "json_to_dsl",
    "validate_model",
]
