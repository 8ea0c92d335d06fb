"""What every JSON API body shares: strict fields, no NUL characters, one error shape."""

from typing import Any

from ninja import Schema
from pydantic import ConfigDict, field_validator


def contains_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` holds U+0000 (PostgreSQL text and jsonb refuse it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


class Strict(Schema):
    """A request body: unknown fields and NUL characters are refused with 422."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("must not contain NUL (\\u0000) characters")
        return value


class Detail(Schema):
    detail: str


# Every status an operation may answer with besides its success: validation and state
# errors, the ASGI body-size guard (413), rate limits (429) and object storage down (503).
ERRORS = {code: Detail for code in (400, 401, 403, 404, 409, 413, 422, 429, 503)}
