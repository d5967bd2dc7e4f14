"""Errors the practice org returns, in Salesforce's REST shapes.

Single-record calls return a JSON array ``[{"message", "errorCode", "fields"}]``;
results inside sObject Collections carry the code as ``statusCode`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ApiError(Exception):
    """An API error with the HTTP status, Salesforce error code and message to send.

    ``fields`` is None where Salesforce leaves the key out of the body; an empty list
    sends ``"fields": []``, as Salesforce does for DUPLICATE_VALUE.
    """

    status: int
    error_code: str
    message: str
    fields: list[str] | None = None

    def __post_init__(self) -> None:
        super().__init__(f"{self.error_code}: {self.message}")

    def rest_body(self) -> list[dict[str, Any]]:
        """Return the body of a single-record REST error response."""
        body: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            body["fields"] = self.fields
        return [body]

    def collection_error(self) -> dict[str, Any]:
        """Return one entry of an sObject Collections result's ``errors`` list."""
        return {"statusCode": self.error_code, "message": self.message,
                "fields": self.fields or []}


@dataclass
class OAuthError(Exception):
    """An OAuth endpoint error, sent as ``{"error", "error_description"}``."""

    error: str
    description: str
    status: int = 400

    def __post_init__(self) -> None:
        super().__init__(f"{self.error}: {self.description}")


def not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


def invalid_session() -> ApiError:
    return ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def no_such_column(field_name: str, sobject: str) -> ApiError:
    return ApiError(
        400, "INVALID_FIELD", f"No such column '{field_name}' on sobject of type {sobject}"
    )


def not_writable(field_name: str, sobject: str) -> ApiError:
    return ApiError(
        400,
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {field_name}. Please check the security settings "
        f"of this field and verify that it is read/write for your profile or permission set.",
        [field_name],
    )
