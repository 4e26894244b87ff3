"""Named points where a process can be made to die with SIGKILL, for crash-safety tests.

Inert unless ``PALISADE_CRASH_AT`` names a point: end-to-end tests set it on a real
``palisade serve`` process to kill it exactly between a Tavus call and the write that
records its result, the window a random kill would rarely hit.
"""

from __future__ import annotations

import os
import signal

_TARGET = os.environ.get("PALISADE_CRASH_AT") or None


def reach(point: str) -> None:
    if point == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
