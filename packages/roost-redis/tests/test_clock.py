"""The worker's estimate of the server's clock (kept against the monotonic clock)."""

from __future__ import annotations

import time

from roost.redis.maintenance import Clock


def test_an_unobserved_clock_reads_like_this_machine() -> None:
    # Before any reply, the estimate must be usable: a worker whose first reply was slow
    # would otherwise judge leases and due times against the monotonic clock's epoch.
    assert abs(Clock().now_ms() - time.time() * 1000.0) < 50.0


def test_observe_takes_the_midpoint_of_the_round_trip() -> None:
    clock = Clock()
    sent = clock.local_ms() - 10.0
    clock.observe(5_000_000.0, sent)
    received_mid = (sent + clock.local_ms()) / 2.0
    assert abs(clock.server_ms(received_mid) - 5_000_000.0) < 1.0


def test_a_slow_reply_is_ignored_once_the_clock_has_a_fast_one() -> None:
    clock = Clock()
    clock.observe(1_000_000.0, clock.local_ms() - 500.0)  # first: taken though slow
    first = clock.now_ms()
    assert abs(first - 1_000_000.0) < 300.0
    clock.observe(1_000_000.0, clock.local_ms() - 1.0)  # fast: taken
    fast = clock.now_ms()
    assert abs(fast - 1_000_000.0) < 5.0
    clock.observe(9_000_000.0, clock.local_ms() - 500.0)  # slow again: ignored
    assert abs(clock.now_ms() - fast) < 5.0
