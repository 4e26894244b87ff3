"""Sessions: one Tavus conversation's lifecycle, from request to cleanup."""
