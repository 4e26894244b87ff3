"""Palisade: session orchestration for Tavus conversational video."""

__version__ = "0.1.0"
