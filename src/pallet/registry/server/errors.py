"""Distribution-spec error codes, their HTTP statuses and the JSON error body."""

from __future__ import annotations

import json
from typing import Any

STATUS: dict[str, int] = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "SIZE_INVALID": 400,
    "TAG_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    "PAGINATION_NUMBER_INVALID": 400,
    "RANGE_INVALID": 416,
    "MANIFEST_TOO_BIG": 413,
}


class APIError(Exception):
    """An error answered to the client as `{"errors":[{"code","message","detail"}]}`."""

    def __init__(self, code: str, message: str, detail: Any = None, *, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or STATUS.get(code, 400)
        self.headers = headers or {}

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        err["detail"] = self.detail if self.detail is not None else {}
        return json.dumps({"errors": [err]}).encode()
