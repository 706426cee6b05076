"""Shared fixtures of the MCP tests: a real orchestrator_daemon (mock runtime,
SQLite, port chosen by the kernel) and users made with `ui init`, each with
its automation policy pushed to the daemon."""

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client, ClientSession
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

BIN = Path(os.environ.get("UNIVRS_BIN_DIR", "target/debug"))
PASSPHRASE = "mcp test passphrase"

TOOLS = ["list_workloads", "create_workload", "get_workload", "update_workload",
         "delete_workload", "scale_workload", "get_workload_logs", "list_nodes", "get_node",
         "cordon_node", "drain_node", "get_cluster_status", "list_events",
         "list_pending_approvals", "get_node_reputation", "get_credit_balance",
         "get_credit_history"]

MANIFEST = {
    "name": "web",
    "replicas": 1,
    "containers": [{"name": "main", "image": "example.org/web:1",
                    "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}}}],
}


@pytest.fixture(scope="session")
def daemon():
    data = tempfile.mkdtemp()
    log = open(Path(data) / "daemon.log", "w+")
    proc = subprocess.Popen(
        [str(BIN / "orchestrator_daemon"), "--runtime", "mock", "--store", "sqlite",
         "--data-dir", str(Path(data) / "state"), "--api-addr", "127.0.0.1:0",
         # The paging tests create 500 workloads each, over one session:
         # above the default per-owner quotas (100 workloads, 500 replicas).
         "--quota-workloads", "2000", "--quota-replicas", "2000"],
        stdout=subprocess.DEVNULL, stderr=log)
    url = None
    deadline = time.monotonic() + 30
    while url is None and time.monotonic() < deadline:
        log.seek(0)
        m = re.search(r"listening on (http://[0-9.:]+)", log.read())
        if m:
            url = m.group(1)
        elif proc.poll() is not None:
            raise RuntimeError("the daemon exited")
        else:
            time.sleep(0.1)
    assert url, "the daemon did not start listening"
    yield url, Path(data) / "state"
    proc.terminate()
    proc.wait(timeout=20)


class User:
    """A user of the daemon: a config dir made by `ui init`."""

    def __init__(self, url, autonomous=(), require_approval=(), forbidden=(), ai=True,
                 push=True):
        self.url = url
        self.config = tempfile.mkdtemp()
        self.env = dict(os.environ, UNIVRS_PASSPHRASE=PASSPHRASE)
        self.ui_ok("init")
        policy = Path(self.config) / "policy" / "automation.toml"
        policy.parent.mkdir(parents=True, exist_ok=True)
        policy.write_text(
            f"autonomous = {json.dumps(list(autonomous))}\n"
            f"require_approval = {json.dumps(list(require_approval))}\n"
            f"forbidden = {json.dumps(list(forbidden))}\n")
        self.ui_ok("policy", "ai", "on" if ai else "off")
        if push:
            self.ui_ok("policy", "push")

    def at(self, url):
        """The same user speaking to the daemon at `url`."""
        other = User.__new__(User)
        other.__dict__.update(self.__dict__, url=url)
        return other

    def ui(self, *args):
        return subprocess.run(
            [str(BIN / "ui"), "--config-dir", self.config, "--server", self.url, *args],
            env=self.env, capture_output=True, text=True)

    def ui_ok(self, *args):
        out = self.ui(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout

    def ui_json(self, *args):
        return json.loads(self.ui_ok("-o", "json", *args))

    def token(self, name, tools, expires="1h"):
        """A new agent token and its id."""
        made = self.ui_json("agent", "token", "create", "--name", name,
                            "--tools", ",".join(tools), "--expires", expires)
        return made["token"], made["id"]


def http(url, token, mode="legacy"):
    """Connects to `url`/mcp over streamable HTTP with agent `token`, speaking
    protocol `mode` ("legacy": 2025-11-25 with the initialize handshake)."""
    @contextlib.asynccontextmanager
    async def connect():
        client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with client:
            transport = streamable_http_client(f"{url}/mcp", http_client=client)
            async with Client(transport, mode=mode) as session:
                yield session
    return connect


def stdio(params):
    """Connects to `ui mcp` started with `params`, through the initialize handshake."""
    @contextlib.asynccontextmanager
    async def connect():
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                yield session
    return connect


def text_of(result):
    return "".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def data_of(result):
    assert not result.is_error, text_of(result)
    return json.loads(text_of(result))


def run(connect, body):
    """Runs `body(session)` on a session opened by the async context `connect()`."""
    async def main():
        async with connect() as session:
            return await body(session)
    return anyio.run(main)


def wait_for(what, check, timeout=15.0):
    """Polls `check()` until it returns something truthy, or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
