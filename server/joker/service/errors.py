"""Errors the HTTP layer turns into 4xx answers: each names the field and the fix."""

from __future__ import annotations

from joker_core.protocol import FieldError


class ApiError(FieldError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


class UnsupportedMedia(ApiError):
    status = 415


class Unprocessable(ApiError):
    status = 422


class StoreUnavailable(ApiError):
    status = 503


class InsufficientStorage(ApiError):
    status = 507


def status_of(error: FieldError) -> int:
    """Plain protocol FieldErrors are validation failures (422)."""
    return error.status if isinstance(error, ApiError) else 422
