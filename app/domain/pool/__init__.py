"""The warm pool: ephemeral PALs created ahead of time, so a start only creates the
conversation. ``fingerprint`` keys a PAL body, ``keys`` lists what a profile keeps warm,
``claim`` hands a pooled PAL to a session, ``refill`` keeps the pool at its size."""
