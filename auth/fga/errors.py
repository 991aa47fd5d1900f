"""FGA errors as OpenFGA reports them: a numeric code, its name, a message a person can act on."""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """OpenFGA's error codes (openfga/api errors_ignore.proto); the names are the wire names."""

    validation_error = 2000
    authorization_model_not_found = 2001
    authorization_model_resolution_too_complex = 2002
    invalid_write_input = 2003
    cannot_allow_duplicate_tuples_in_one_request = 2004
    cannot_allow_duplicate_types_in_one_request = 2005
    cannot_allow_multiple_references_to_one_relation = 2006
    invalid_continuation_token = 2007
    invalid_tuple_set = 2008
    invalid_check_input = 2009
    invalid_expand_input = 2010
    unsupported_user_set = 2011
    invalid_object_format = 2012
    write_failed_due_to_invalid_input = 2017
    authorization_model_assertions_not_found = 2018
    latest_authorization_model_not_found = 2020
    type_not_found = 2021
    relation_not_found = 2022
    empty_relation_definition = 2023
    invalid_user = 2025
    invalid_tuple = 2027
    unknown_relation = 2028
    store_id_invalid_length = 2030
    assertions_too_many_items = 2033
    id_too_long = 2034
    authorization_model_id_too_long = 2036
    tuple_key_value_not_specified = 2037
    tuple_keys_too_many_or_too_few_items = 2038
    page_size_invalid = 2039
    param_missing_value = 2040
    difference_base_missing_value = 2041
    subtract_base_missing_value = 2042
    object_too_long = 2043
    relation_too_long = 2044
    type_definitions_too_few_items = 2045
    type_invalid_length = 2046
    type_invalid_pattern = 2047
    relations_too_few_items = 2048
    relations_too_long = 2049
    relations_invalid_pattern = 2050
    object_invalid_pattern = 2051
    query_string_type_continuation_token_mismatch = 2052
    exceeded_entity_limit = 2053
    invalid_contextual_tuple = 2054
    duplicate_contextual_tuple = 2055
    invalid_authorization_model = 2056
    unsupported_schema_version = 2057
    # not-found codes (HTTP 404)
    undefined_endpoint = 5000
    store_id_not_found = 5002
    # internal codes (HTTP 500)
    internal_error = 4000
    deadline_exceeded = 4004


class FGAError(Exception):
    """An FGA request failed; `code` is OpenFGA's numeric code, `name` its wire name.

    Messages never contain credentials; they name the tuple, type or relation at fault.
    """

    def __init__(self, code: ErrorCode | int, message: str) -> None:
        self.code = ErrorCode(code)
        self.name = self.code.name
        self.message = message
        super().__init__(f"{message} (OpenFGA error {int(self.code)} {self.name})")

    @property
    def http_status(self) -> int:
        """The HTTP status OpenFGA answers with for this code."""
        if self.code in (ErrorCode.store_id_not_found, ErrorCode.undefined_endpoint):
            return 404
        if self.code == ErrorCode.internal_error:
            return 500
        if self.code == ErrorCode.deadline_exceeded:
            return 504
        return 400

    def to_json(self) -> dict[str, str]:
        """OpenFGA's error body: `{"code": "<name>", "message": "..."}`."""
        return {"code": self.name, "message": self.message}


def validation_error(message: str) -> FGAError:
    """Invalid input (2000)."""
    return FGAError(ErrorCode.validation_error, message)


def type_not_found(type_name: str) -> FGAError:
    """A type the model does not define (2021)."""
    return FGAError(ErrorCode.type_not_found, f"type '{type_name}' not found")


def relation_not_found(relation: str, type_name: str) -> FGAError:
    """A relation the type does not define (2022)."""
    return FGAError(
        ErrorCode.relation_not_found,
        f"relation '{type_name}#{relation}' not found",
    )


def resolution_too_complex() -> FGAError:
    """The resolution went deeper than the depth limit (2002)."""
    return FGAError(
        ErrorCode.authorization_model_resolution_too_complex,
        "Authorization Model resolution required too many rewrite rules to be resolved. "
        "Check your authorization model for infinite recursion or too much nesting",
    )


def deadline_exceeded(seconds: float) -> FGAError:
    """A request ran past its deadline and was stopped (4004, HTTP 504)."""
    return FGAError(
        ErrorCode.deadline_exceeded, f"the request did not complete within {seconds:g}s"
    )


def invalid_tuple(tuple_string: str, reason: str) -> FGAError:
    """A tuple (written or contextual) that the model does not allow (2027)."""
    return FGAError(ErrorCode.invalid_tuple, f"Invalid tuple '{tuple_string}'. Reason: {reason}")
