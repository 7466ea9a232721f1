"""redis+sentinel:// and redis+cluster:// URLs: the grammar, each error, the clients built."""

from __future__ import annotations

import pytest
from redis.asyncio.cluster import RedisCluster

from roost.redis.topology import (
    ClusterUrl,
    SentinelRedis,
    SentinelUrl,
    is_topology_url,
    parse_topology_url,
    topology_client,
)
from roost.runtime.errors import SettingsError


def test_a_sentinel_url_names_sentinels_service_db_and_credentials() -> None:
    url = (
        "redis+sentinel://app:s%40cret@127.0.0.3:26380,sentinel-b,[::1]:5000/my.service/3"
        "?sentinel_username=watch&sentinel_password=w%26tch&min_other_sentinels=1"
    )
    assert parse_topology_url(url) == SentinelUrl(
        sentinels=(("127.0.0.3", 26380), ("sentinel-b", 26379), ("::1", 5000)),
        service="my.service",
        db=3,
        username="app",
        password="s@cret",
        sentinel_username="watch",
        sentinel_password="w&tch",
        min_other_sentinels=1,
    )


def test_a_sentinel_url_needs_only_hosts_and_a_service() -> None:
    assert parse_topology_url("REDIS+SENTINEL://:pw@h:1/svc") == SentinelUrl(
        sentinels=(("h", 1),), service="svc", password="pw"
    )


@pytest.mark.parametrize(
    ("url", "nodes"),
    [
        ("redis+cluster://a:7000,b:7001,c", (("a", 7000), ("b", 7001), ("c", 6379))),
        ("redis+cluster://a:7000/", (("a", 7000),)),
        ("redis+cluster://a:7000/0", (("a", 7000),)),
    ],
)
def test_a_cluster_url_names_seed_nodes(url: str, nodes: tuple[tuple[str, int], ...]) -> None:
    assert parse_topology_url(url) == ClusterUrl(nodes=nodes)


def test_cluster_credentials_and_passwords_stay_out_of_reprs() -> None:
    target = parse_topology_url("redis+cluster://user:hunter2@a:1")
    assert target == ClusterUrl(nodes=(("a", 1),), username="user", password="hunter2")
    assert "hunter2" not in repr(target)
    sentinel = parse_topology_url("redis+sentinel://:pw1@a/s?sentinel_password=pw2")
    assert "pw1" not in repr(sentinel) and "pw2" not in repr(sentinel)


def test_only_the_two_schemes_are_topology_urls() -> None:
    assert is_topology_url("redis+sentinel://a/s") and is_topology_url("Redis+Cluster://a")
    assert not is_topology_url("redis://a") and not is_topology_url("rediss://a")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://a:1/0", "not a redis+sentinel:// or redis+cluster:// URL: 'redis'"),
        ("a:1,b:2/svc", "not a redis+sentinel:// or redis+cluster:// URL: no scheme"),
        ("redis+sentinel:///svc", "redis+sentinel URL: names no host"),
        ("redis+cluster://:pw@", "redis+cluster URL: names no host"),
        ("redis+sentinel://a:1,,b:2/svc", "an empty entry in the host list (two commas?)"),
        ("redis+sentinel://a:1,:2/svc", "empty host in ':2'"),
        ("redis+sentinel://a:x/svc", "bad port in 'a:x' (use 1-65535)"),
        ("redis+cluster://a:0", "bad port in 'a:0' (use 1-65535)"),
        ("redis+cluster://a:65536", "bad port in 'a:65536' (use 1-65535)"),
        ("redis+cluster://a:-1", "bad port in 'a:-1' (use 1-65535)"),
        ("redis+cluster://a:7²", "bad port in 'a:7²' (use 1-65535)"),
        ("redis+cluster://[::1:7000", "cannot read host '[::1:7000' (IPv6 goes in [brackets])"),
        ("redis+cluster://::1:7000", "cannot read host '::1:7000' (IPv6 goes in [brackets])"),
        ("redis+sentinel://user@a/svc", "names a user but no password (use USER:PASSWORD@)"),
        ("redis+sentinel://a:1", "names no service (…/SERVICE after the sentinels)"),
        ("redis+sentinel://a:1/", "names no service (…/SERVICE after the sentinels)"),
        ("redis+sentinel://a:1/svc/x", "db must be a whole number 0 or more, not 'x'"),
        ("redis+sentinel://a:1/svc/-1", "db must be a whole number 0 or more, not '-1'"),
        ("redis+sentinel://a:1/svc/²", "db must be a whole number 0 or more, not '²'"),
        ("redis+sentinel://a:1/svc/0/more", "the path is /SERVICE or /SERVICE/DB, not"),
        ("redis+sentinel://a:1/svc/", "the path is /SERVICE or /SERVICE/DB, not '/svc/'"),
        ("redis+cluster://a:1/2", "a cluster has only db 0; drop the path '/2'"),
        ("redis+cluster://a:1?x=1", "unknown option 'x' (none exist)"),
        ("redis+sentinel://a/s?timeout=1", "unknown option 'timeout' (supported: sentinel_"),
        ("redis+sentinel://a/s?min_other_sentinels=1&min_other_sentinels=2", "given twice"),
        ("redis+sentinel://a/s?sentinel_password=", "option 'sentinel_password' has no value"),
        ("redis+sentinel://a/s?min_other_sentinels=two", "must be 0 or more, not 'two'"),
        ("redis+sentinel://a/s?min_other_sentinels=%C2%B2", "must be 0 or more, not '²'"),
        ("redis+sentinel://a/s#frag", "has a '#' fragment; remove it"),
    ],
)
def test_each_malformed_url_fails_with_one_line_naming_the_problem(url: str, message: str):
    with pytest.raises(SettingsError) as caught:
        parse_topology_url(url)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_errors_never_show_the_password() -> None:
    for url in ("redis+sentinel://u:hunter2@a:x/s", "redis+cluster://:hunter2@a/9"):
        with pytest.raises(SettingsError) as caught:
            parse_topology_url(url)
        assert "hunter2" not in str(caught.value)


async def test_the_clients_are_redis_pys_own_with_decoded_replies() -> None:
    sentinel = topology_client("redis+sentinel://:pw@127.0.0.1:1/svc/2?min_other_sentinels=1")
    cluster = topology_client("redis+cluster://127.0.0.1:1,127.0.0.1:2")
    try:
        assert isinstance(sentinel, SentinelRedis)
        pool = sentinel.connection_pool
        assert pool.connection_kwargs["db"] == 2
        assert pool.connection_kwargs["password"] == "pw"
        assert pool.connection_kwargs["decode_responses"] is True
        assert pool.service_name == "svc"  # type: ignore[attr-defined]
        manager = pool.sentinel_manager  # type: ignore[attr-defined]
        assert manager.min_other_sentinels == 1
        assert isinstance(cluster, RedisCluster)
        assert {n.port for n in cluster.startup_nodes} == {1, 2}
        assert cluster.get_encoder().decode_responses is True
    finally:
        await sentinel.aclose()
        await cluster.aclose()
