"""Shared test helpers: databases, processes and polling."""
