"""The one error type handlers raise; the middleware renders it as contract JSON."""

from __future__ import annotations

__all__ = ["ApiError", "bad_request", "not_found", "unauthorized", "conflict"]


class ApiError(Exception):
    """An expected failure: rendered as ``{"error": code, "detail": detail}`` with ``status``.

    Usage: ``raise ApiError(409, "sold_out", "FLASH-0001 has 0 left, asked for 1")``
    """

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        # One line, bounded: details may quote user input.
        self.detail = " ".join(detail.split())[:300]


def bad_request(code: str, detail: str) -> ApiError:
    return ApiError(400, code, detail)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def unauthorized(detail: str = "send Authorization: Bearer <token> from POST /api/sessions") -> ApiError:
    return ApiError(401, "unauthorized", detail)


def conflict(code: str, detail: str) -> ApiError:
    return ApiError(409, code, detail)
