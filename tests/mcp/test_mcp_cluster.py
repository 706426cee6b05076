"""Agents reaching a cluster through a worker: a control plane and a worker
(mock runtime) gossiping on loopback. The worker forwards `/api/v1` and `/mcp`
to the control plane with the agent's token or name, so the control plane
holds the call to the user's automation policy exactly as when asked directly
— an agent cannot slip past its policy by talking to another node.
"""

import json
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from mcp import StdioServerParameters

from conftest import BIN, MANIFEST, User, data_of, http, run, stdio, text_of, wait_for


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(data, api, gossip, *extra):
    log = open(Path(data) / "daemon.log", "w+")
    proc = subprocess.Popen(
        [str(BIN / "orchestrator_daemon"), "--runtime", "mock", "--store", "sqlite",
         "--data-dir", str(Path(data) / "state"), "--api-addr", f"127.0.0.1:{api}",
         "--gossip-addr", f"127.0.0.1:{gossip}", "--gossip-interval-ms", "100", *extra],
        stdout=subprocess.DEVNULL, stderr=log)
    return proc, log


def join_token(data, api):
    """A join token from the control plane (which created its cluster)."""
    token = []

    def issued():
        out = subprocess.run(
            [str(BIN / "orchestrator_daemon"), "join-token", "--data-dir",
             str(Path(data) / "state"), "--api-addr", f"127.0.0.1:{api}"],
            capture_output=True, text=True)
        if out.returncode == 0:
            token.append(out.stdout.strip())
        return out.returncode == 0
    wait_for("a join token from the control plane", issued, timeout=60)
    return token[0]


@pytest.fixture(scope="module")
def cluster():
    """(control plane URL, worker URL)."""
    cp_api, cp_gossip = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    w_api, w_gossip = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_DGRAM)
    cp_data = tempfile.mkdtemp()
    cp = start(cp_data, cp_api, cp_gossip)
    worker = start(tempfile.mkdtemp(), w_api, w_gossip, "--join", join_token(cp_data, cp_api))
    cp_url, w_url = f"http://127.0.0.1:{cp_api}", f"http://127.0.0.1:{w_api}"
    try:
        # Both nodes Ready, as the control plane sees them through the worker.
        probe = User(w_url, push=False)

        def two_ready():
            out = probe.ui("-o", "json", "node", "status")
            if out.returncode != 0:
                return False
            nodes = json.loads(out.stdout)["items"]
            return len([n for n in nodes if n["status"] == "Ready"]) == 2
        try:
            wait_for("a control plane and a worker, Ready", two_ready, timeout=60)
        except AssertionError:
            for proc, log in (cp, worker):
                log.seek(0)
                print(log.read()[-4000:])
            raise
        yield cp_url, w_url
    finally:
        for proc, _ in (cp, worker):
            proc.terminate()
        for proc, _ in (cp, worker):
            proc.wait(timeout=20)


@pytest.fixture(scope="module")
def governed(cluster):
    """A user (made through the worker) whose deletes need approval and who
    forbids node changes."""
    return User(cluster[1],
                autonomous=["list_workloads", "get_workload", "create_workload",
                            "scale_workload", "list_pending_approvals", "list_nodes",
                            "get_node"],
                require_approval=["delete_workload"],
                forbidden=["drain_node", "cordon_node"])


def stdio_via(user, url, agent):
    return stdio(StdioServerParameters(
        command=str(BIN / "ui"),
        args=["--config-dir", user.config, "--server", url, "mcp", "--agent", agent],
        env=user.env))


def test_stdio_through_a_worker_is_held_to_the_policy(cluster, governed):
    cp_url, w_url = cluster

    async def body(s):
        data_of(await s.call_tool("create_workload",
                                  {"manifest": dict(MANIFEST, name="via-worker")}))
        held = data_of(await s.call_tool("delete_workload", {"workload": "via-worker"}))
        r = await s.call_tool("cordon_node", {"node": "anything"})
        assert r.is_error and "forbidden by your automation policy" in text_of(r), text_of(r)
        return held["pending_approval"]["id"]
    approval = run(stdio_via(governed, w_url, "stdio-via-worker"), body)

    # Held, not run: the control plane still has the workload.
    at_cp = governed.at(cp_url)
    assert at_cp.ui_json("status", "via-worker")["workload"]["spec"]["name"] == "via-worker"
    audit = at_cp.ui_json("audit", "--agent", "stdio-via-worker")["items"]
    decisions = {(e["action"], e["decision"]) for e in audit}
    assert ("DELETE /api/v1/workloads/via-worker", "pending_approval") in decisions, decisions
    # The user approves through the worker; it runs once.
    done = governed.ui_json("approvals", "approve", approval)
    assert done["state"] == "approved" and done["result"]["status"] == 200, done
    assert at_cp.ui("status", "via-worker").returncode != 0


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_http_mcp_through_a_worker_with_a_token(cluster, governed, mode):
    cp_url, w_url = cluster
    token, _ = governed.token(f"http-via-worker-{mode}", ["*"])
    name = f"tok-{mode.replace('-', '')}"

    async def body(s):
        tools = {t.name for t in (await s.list_tools()).tools}
        assert "create_workload" in tools
        data_of(await s.call_tool("create_workload", {"manifest": dict(MANIFEST, name=name)}))
        scaled = data_of(await s.call_tool("scale_workload", {"workload": name, "replicas": 2}))
        assert scaled["spec"]["replicas"] == 2
        r = await s.call_tool("drain_node", {"node": "anything"})
        assert r.is_error and "forbidden by your automation policy" in text_of(r), text_of(r)
        held = data_of(await s.call_tool("delete_workload", {"workload": name}))
        assert held["pending_approval"]["state"] == "pending"
    run(http(w_url, token, mode), body)
    at_cp = governed.at(cp_url)
    assert at_cp.ui_json("status", name)["workload"]["spec"]["replicas"] == 2
