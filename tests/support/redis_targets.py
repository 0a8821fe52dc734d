"""The real Redis deployments the multi-instance tests run against: one Redis (`REDIS_URL`) and a Redis
Cluster (`REDIS_CLUSTER_URL`, one of its nodes; .ci/run starts a 3-master cluster). Each is a parameter
(`TARGETS`) skipped when its variable is not set.
"""

from __future__ import annotations

import os

import pytest
import redis
from redis.cluster import RedisCluster

TARGETS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("cluster", marks=[pytest.mark.redis, pytest.mark.redis_cluster]),
]


def server_redis_url(kind: str) -> str:
    """The `REDIS_URL` a server gets for `kind` (a cluster: `redis+cluster://host:port`); skips when unset."""
    var = "REDIS_CLUSTER_URL" if kind == "cluster" else "REDIS_URL"
    url = os.environ.get(var)
    if not url:
        pytest.skip(f"{var} is not set")
    if kind == "cluster":
        for plain in ("redis://", "rediss://"):
            if url.startswith(plain):
                return plain.replace("://", "+cluster://") + url[len(plain) :]
    return url


def delete_prefix(kind: str, prefix: str) -> None:
    """Delete every key under `prefix` (SCAN on the prefix, never FLUSHALL; on a cluster, every node)."""
    url = server_redis_url(kind).replace("+cluster", "")
    client: redis.Redis | RedisCluster = RedisCluster.from_url(url) if kind == "cluster" else redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
