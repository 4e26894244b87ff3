"""Tenant webhooks: Palisade tells a tenant's backend what happened to its sessions
(docs/webhooks.md)."""
