"""Run ids: time-ordered (version 7, RFC 9562) UUIDs, made without a system call per id."""

from __future__ import annotations

import os
import time
import uuid

_random = bytearray()
os.register_at_fork(after_in_child=_random.clear)  # a child must not reuse its parent's bytes

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_NOT_VERSION_OR_VARIANT = ~((0xF << 76) | (0x3 << 62))


def new_run_id() -> uuid.UUID:
    """A version 7 UUID: the time in milliseconds, then 74 random bits.

    Time-ordered because run ids key the two biggest tables' indexes: random (version 4) keys land
    on a random index page each, so every commit dirties a page per run; ordered ones share the last
    pages (docs/performance.md has the figures). 74 random bits still cannot be guessed. The random
    bytes come from os.urandom 4,000 at a time: each call lets go of the GIL for its system call, and
    getting it back while a database thread runs Python can take a whole switch interval."""
    if not _random:
        _random.extend(os.urandom(4000))
    value = int.from_bytes(_random[-10:])
    del _random[-10:]
    value |= (time.time_ns() // 1_000_000) << 80
    return uuid.UUID(int=(value & _NOT_VERSION_OR_VARIANT) | _VERSION_7 | _VARIANT_RFC)
