"""Tenants: customer products, their profiles, credentials and session cap."""
