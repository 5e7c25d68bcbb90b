"""Redis Cluster: three masters on loopback from the embedded binary; issue, deliver, verify."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests
from redis.cluster import RedisCluster

from smscode.adapters import keys
from smscode.adapters.redis_client import connect
from smscode_dev.embedded import EmbeddedRedis, free_port, server_binary
from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, Worker, fresh_phone, started

pytestmark = pytest.mark.slow


def _wait_until_ok(nodes: list[EmbeddedRedis], timeout: float = 20.0) -> None:
    """Every node agrees the cluster covers all slots (gossip takes a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        states = []
        for node in nodes:
            with redis.Redis(port=node.port, decode_responses=True) as client:
                states.append(client.cluster("INFO").get("cluster_state"))
        if states == ["ok"] * len(nodes):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"cluster not ready: {states}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[list[EmbeddedRedis]]:
    """Three cluster-enabled masters, slots spread by valkey-cli, no replicas."""
    cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
    nodes: list[EmbeddedRedis] = []
    try:
        for _ in range(3):  # each node writes nodes.conf into its own temporary --dir
            # The bus port defaults to port + 10000, past 65535 for a high ephemeral port.
            bus = ["--cluster-port", str(free_port())]
            nodes.append(EmbeddedRedis(extra_args=[*cluster_args, *bus]).start())
        cli = Path(server_binary()).with_name("valkey-cli")
        addresses = [f"127.0.0.1:{node.port}" for node in nodes]
        subprocess.run(
            [str(cli), "--cluster", "create", *addresses, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        _wait_until_ok(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture(scope="module")
def cluster_url(cluster: list[EmbeddedRedis]) -> str:
    """Any one node is enough: the client discovers the others (no /db: a cluster has one)."""
    return f"redis+cluster://127.0.0.1:{cluster[0].port}"


@pytest.fixture(scope="module")
def broker() -> Iterator[EmbeddedRedis]:
    """Celery's broker stays a plain Redis: kombu's transport does not speak Cluster."""
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture(scope="module")
def cluster_stack(
    cluster_url: str, broker: EmbeddedRedis, fake_ronglian_session: FakeRonglian
) -> Iterator[str]:
    """`smscode serve` and `smscode worker` with their codes on the cluster."""
    env = stack_env(cluster_url, fake_ronglian_session, CELERY_BROKER_URL=broker.url)
    server = Server(env)
    with started(server, Worker(env)):
        yield server.url


def test_connect_speaks_cluster_for_a_cluster_url(cluster_url: str) -> None:
    client = connect(cluster_url)
    assert isinstance(client, RedisCluster)
    assert len(client.get_primaries()) == 3
    client.close()


def test_issue_deliver_verify_on_a_three_master_cluster(
    cluster_stack: str, cluster_url: str, fake_ronglian: FakeRonglian
) -> None:
    # given
    phone = fresh_phone()
    # when
    answer = requests.post(f"{cluster_stack}/codes", json={"phone": phone}, timeout=5)
    # then: accepted, delivered once, verified once
    assert answer.status_code == 202
    [sms] = fake_ronglian.wait_for(1, timeout=20)
    assert sms.to == phone
    code = sms.datas[0]
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    verify = f"{cluster_stack}/codes/verify"
    assert requests.post(verify, json={"phone": phone, "code": wrong}, timeout=5).status_code == 400
    assert requests.post(verify, json={"phone": phone, "code": code}, timeout=5).status_code == 200
    again = requests.post(verify, json={"phone": phone, "code": code}, timeout=5)
    assert again.json()["error"] == "no_active_code"
    resend = requests.post(f"{cluster_stack}/codes", json={"phone": phone}, timeout=5)
    assert resend.status_code == 429
    assert requests.get(f"{cluster_stack}/healthz", timeout=5).status_code == 200


def test_every_key_lives_in_the_hash_tags_slot(cluster_stack: str, cluster_url: str) -> None:
    # given a send, so codes, counters and request state exist
    phone = fresh_phone()
    requests.post(f"{cluster_stack}/codes", json={"phone": phone}, timeout=5)
    client = connect(cluster_url)
    assert isinstance(client, RedisCluster)
    # then: one master holds them all, the trade-off keys.py states
    owner = client.get_node_from_key(keys.code(phone))
    for node in client.get_primaries():
        with redis.Redis(host=node.host, port=node.port) as direct:
            has_keys = direct.dbsize() > 0
        assert has_keys == (node.name == owner.name), node.name
    client.close()
