"""Credentials and secrets: tenant API keys, webhook tokens, encrypted Tavus keys."""
