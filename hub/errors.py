"""Every error ledgerhub raises on purpose, grouped by how the caller handles it.

The tree (catch a branch, not a leaf, unless you handle that leaf specially)::

    LedgerhubError
    ├── FatalError                 stop: the environment or configuration is wrong; an operator acts
    │   ├── ConfigError            a setting or config file is invalid (names what and where)
    │   ├── DatabaseSetupError     the embedded PostgreSQL cannot be initialised or started
    │   └── SchemaError            the database schema is missing, newer than us, or was altered
    ├── RetriableError             transient: the same call may succeed later (back off, retry)
    │   ├── StoreUnavailable       the database could not be reached or dropped the connection
    │   ├── LeaseLost              another worker took over a projection; stop running it
    │   └── TargetUnavailable      an accounting target timed out, answered 5xx or 429 (retry)
    ├── SkippableError             this one item cannot be processed; park or skip it and go on
    │   ├── Unmappable             an event a mapper cannot turn into facts (counted as unmapped)
    │   └── TargetRejected         an accounting target refused a document (parked, its message)
    └── RejectedError              the caller's input is refused and nothing was written
        ├── InvalidInput           malformed input (HTTP 422); `errors` names item index and field
        ├── BatchTooLarge          too many events or too many bytes (HTTP 413)
        ├── ConcurrencyConflict    a stream's `expected_version` did not match (HTTP 409)
        ├── NotFound               a named projection, job, key or connection does not exist (404)
        ├── Unauthenticated        no valid key: missing, unknown, expired or revoked (HTTP 401)
        │   └── SignatureInvalid   a webhook's provider signature is bad or stale (HTTP 401)
        ├── Forbidden              a valid key outside its scope (HTTP 403)
        └── UnsupportedMediaType   a body that is not the media type the route takes (HTTP 415)

Library errors (asyncpg, OS errors) are translated into these at the boundary where they occur,
with ``raise ... from exc`` so the cause stays in the traceback.
"""

from __future__ import annotations

from typing import Any


class LedgerhubError(Exception):
    """Base of every error ledgerhub raises on purpose."""


class FatalError(LedgerhubError):
    """The environment or configuration is wrong; retrying will not help."""


class ConfigError(FatalError):
    """A setting, environment variable or configuration file is invalid."""


class DatabaseSetupError(FatalError):
    """The embedded PostgreSQL could not be initialised or started."""


class SchemaError(FatalError):
    """The database schema is missing, newer than this code, or was altered."""


class RetriableError(LedgerhubError):
    """A transient failure: the same operation may succeed if tried again later."""


class StoreUnavailable(RetriableError):
    """The database could not be reached, or the connection was lost mid-operation."""


class LeaseLost(RetriableError):
    """This worker no longer holds a projection's lease: its last batch was not committed."""


class TargetUnavailable(RetriableError):
    """An accounting target did not answer usefully (timeout, 5xx, 429); send again later.

    ``retry_after`` is the delay the target asked for, in seconds, when it named one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SkippableError(LedgerhubError):
    """This one item cannot be processed; park or skip it and continue with the rest."""


class Unmappable(SkippableError):
    """An event its connector's mapper cannot turn into canonical facts (names why).

    The ledger keeps and counts such events as unmapped; it never stops on one.
    """


class TargetRejected(SkippableError):
    """An accounting target refused a document (a validation error); the document is parked
    with the target's message until the data or mapping is fixed."""


class RejectedError(LedgerhubError):
    """The caller's input was refused; nothing of it was written."""

    status: int = 400

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class InvalidInput(RejectedError):
    """Malformed input. ``errors`` lists ``{"index", "field", "message"}`` per problem."""

    status = 422


class BatchTooLarge(RejectedError):
    """A batch with too many events or too many bytes."""

    status = 413


class ConcurrencyConflict(RejectedError):
    """A stream's ``expected_version`` did not match its current version."""

    status = 409

    def __init__(
        self, *, tenant: str, stream: str, expected: int, actual: int, index: int | None = None
    ) -> None:
        where = f"event {index}: " if index is not None else ""
        super().__init__(
            f"{where}stream {stream!r} of tenant {tenant!r} is at version {actual}, "
            f"expected {expected}",
            errors=[
                {
                    "index": index,
                    "field": "expected_version",
                    "message": f"stream is at version {actual}, expected {expected}",
                }
            ],
        )
        self.tenant = tenant
        self.stream = stream
        self.expected = expected
        self.actual = actual


class NotFound(RejectedError):
    """A projection, job or parked event named by the caller does not exist."""

    status = 404


class Unauthenticated(RejectedError):
    """No valid credential: the key is missing, unknown, expired or revoked."""

    status = 401


class SignatureInvalid(Unauthenticated):
    """A webhook delivery's provider signature is missing, wrong or outside its tolerance."""


class Forbidden(RejectedError):
    """A valid key used outside its scope (another source, tenant or kind of access)."""

    status = 403


class UnsupportedMediaType(RejectedError):
    """The request body is not of a media type the route accepts."""

    status = 415
