from __future__ import annotations

from app.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, ValidationFailed


class TenantNotFound(NotFound):
    code = "tenant_not_found"
    title = "Tenant not found"


class TenantExists(Conflict):
    code = "tenant_exists"
    title = "A tenant with this id already exists"


class ProfileNotFound(NotFound):
    code = "profile_not_found"
    title = "Profile not found"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "API key not found"


class InvalidKeyCursor(BadRequest):
    code = "invalid_cursor"
    title = "The pagination cursor is not one of the tenant's keys"


class DefaultProfileUnknown(ValidationFailed):
    code = "unknown_profile"
    title = "default_profile names a profile the tenant does not have"


class PalNotFoundOnTavus(ValidationFailed):
    code = "pal_not_found"
    title = "The profile's pal_id does not exist on Tavus"


class KeyProfileUnknown(ValidationFailed):
    code = "unknown_profile"
    title = "The key's profiles name a profile the tenant does not have"


class InsufficientScope(Forbidden):
    """The key authenticated, but may not do this (RFC 6750's ``insufficient_scope``)."""

    code = "insufficient_scope"
    title = "The API key does not have the scope this request needs"

    def __init__(self, required: str) -> None:
        super().__init__(
            f"this request needs an API key with the scope {required!r}",
            headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{required}"'},
            required_scope=required,
        )


class ProfileNotAllowed(Forbidden):
    code = "profile_not_allowed"
    title = "The API key may not start sessions of this profile"


class KeyRateLimited(TooManyRequests):
    code = "key_rate_limited"
    title = "The API key has used up its start rate"


class CorsOriginNotAllowed(Forbidden):
    code = "cors_origin_not_allowed"
    title = "No tenant lists this origin"


class CorsPreflightRefused(BadRequest):
    code = "cors_preflight_refused"
    title = "The preflight asks for a method or header Palisade does not allow"
