from __future__ import annotations

from app.errors import Conflict, NotFound, ValidationFailed


class WebhookEndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"
    title = "Webhook endpoint not found"


class WebhookDeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"
    title = "Webhook delivery not found"


class WebhookUrlNotAllowed(ValidationFailed):
    code = "webhook_url_not_allowed"
    title = "Webhook URL not allowed"


class TooManyWebhookEndpoints(ValidationFailed):
    code = "too_many_webhook_endpoints"
    title = "Too many webhook endpoints"


class WebhookEndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"
    title = "Webhook endpoint disabled"
