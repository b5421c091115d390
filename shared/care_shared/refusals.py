"""The one family of refusals: what a client or a rule can refuse, typed, pure (no web, no
database), so a domain raises them and `problems.install_problem_handlers` maps every one to
RFC 9457 problem+json in one place.

Each refusal names the field that failed (`field`). Values the client sent are never echoed
back, since they may be clinical data.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://trd-care.example/problems/"


class ProblemError(Exception):
    status = 400
    title = "Bad request"
    slug = "bad-request"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.extra = extra

    @property
    def reason(self) -> str:
        return self.detail

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.field:
            body["field"] = self.field
            body["errors"] = [{"field": self.field, "detail": self.detail}]
        body.update(self.extra)
        return body


# The family's root under the name the domains use: a rule refused the command.
Refusal = ProblemError


class InvalidField(ProblemError):
    status = 422
    title = "Invalid field"
    slug = "invalid-field"


class NotFound(ProblemError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class Unauthorized(ProblemError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"


class IdempotencyKeyReused(ProblemError):
    status = 422
    title = "Idempotency-Key reused with a different request"
    slug = "idempotency-key-reused"


class Rejected(InvalidField):
    """A command that breaks a rule (422); `field` names what to fix (`extra`: more members
    for the problem, e.g. the LOINC code of a PHQ-9 item)."""

    def __init__(self, field: str, reason: str, **extra: Any) -> None:
        super().__init__(reason, field=field, **extra)


class IllegalTransition(Conflict):
    """The aggregate is not in a state that allows this (409)."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason, field=field)
