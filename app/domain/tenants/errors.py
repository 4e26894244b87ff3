from __future__ import annotations

from app.errors import BadRequest, Conflict, NotFound, ValidationFailed


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
