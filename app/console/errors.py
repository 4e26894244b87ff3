"""What the console refuses, beside the errors of the domain it shows."""

from __future__ import annotations

from app.errors import BadRequest, Forbidden, NotFound, UnsupportedMediaType


class CsrfTokenInvalid(Forbidden):
    code = "csrf_token_invalid"
    title = "The form's CSRF token is missing or wrong"


class NotAForm(UnsupportedMediaType):
    code = "form_expected"
    title = "Request body must be application/x-www-form-urlencoded"


class MalformedForm(BadRequest):
    code = "malformed_form"
    title = "The form could not be read"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    title = "No such webhook delivery"


class InvalidDeliveryStatus(BadRequest):
    code = "invalid_status"
    title = "No such delivery status"
