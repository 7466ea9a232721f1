"""redact_url: the one rule for showing a configured URL."""

from __future__ import annotations

import pytest

from roost.runtime.urls import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:hunter2@h:6379/0", "redis://***@h:6379/0"),
        ("redis://:hunter2@[::1]:6379/0", "redis://***@[::1]:6379/0"),
        ("rediss://hunter2@h", "rediss://***@h"),
        # Host lists: a plain URL parser fails on their ports; the rule does not parse them.
        (
            "redis+sentinel://app:hunter2@h1:26379,h2:26380,[::1]:5000/svc/2",
            "redis+sentinel://***@h1:26379,h2:26380,[::1]:5000/svc/2",
        ),
        ("redis+cluster://:hunter2@a:7000,b:7001", "redis+cluster://***@a:7000,b:7001"),
        # Credentials in query options.
        (
            "redis+sentinel://h1,h2/svc?sentinel_username=w&sentinel_password=hunter2&x=1",
            "redis+sentinel://h1,h2/svc?sentinel_username=w&sentinel_password=***&x=1",
        ),
        ("redis://h/0?Password=hunter2#frag", "redis://h/0?Password=***#frag"),
        (
            "s3://bucket/path?X-Amz-Security-Token=hunter2",
            "s3://bucket/path?X-Amz-Security-Token=***",
        ),
        # Unencoded '/', '?', '#' or '@' in a password: everything up to the last '@' goes.
        ("redis://user:hun/ter2@h:1/0", "redis://***@h:1/0"),
        ("redis://user:hun?ter2@h:1/0", "redis://***@h:1/0"),
        ("redis://user:hun#ter2@h:1/0", "redis://***@h:1/0"),
        ("redis://user:hun@ter2@h:1/0", "redis://***@h:1/0"),
        ("user:hunter2@h:1", "***@h:1"),  # no scheme
        # Nothing to hide: unchanged.
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("redis+cluster://a:1,b:2", "redis+cluster://a:1,b:2"),
        (
            "unix:///run/redis/redis-server@main.sock?db=1",
            "unix:///run/redis/redis-server@main.sock?db=1",
        ),
        ("/var/lib/roost/artifacts", "/var/lib/roost/artifacts"),
        ("", ""),
    ],
)
def test_credentials_are_replaced(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "hunter2" not in redact_url(url) and "ter2" not in redact_url(url)
