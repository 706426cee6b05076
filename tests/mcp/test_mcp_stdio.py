"""The MCP server driven by the official Python MCP SDK over stdio.

`ui mcp` runs as a fresh user (an identity made with `ui init`, every tool
autonomous in its automation policy) against a real orchestrator_daemon: the
tools are listed with truthful annotations, a workload is created, scaled and
its logs read, 500 workloads are paged through, and bad arguments come back as
tool errors naming the argument while the server keeps serving.
"""

import contextlib
import json

import pytest
from mcp import Client, StdioServerParameters

from conftest import BIN, MANIFEST, TOOLS, User, data_of, run as run_with, stdio, text_of


@pytest.fixture(scope="module")
def user(daemon):
    return User(daemon[0], autonomous=TOOLS)


@pytest.fixture(scope="module")
def server(user):
    return StdioServerParameters(
        command=str(BIN / "ui"),
        args=["--config-dir", user.config, "--server", user.url, "mcp", "--agent", "pytest-agent"],
        env=user.env,
    )


def run(params, body):
    return run_with(stdio(params), body)


def ui(user, *args):
    return user.ui(*args)


def test_tools_are_listed_with_truthful_annotations(server):
    async def body(s):
        return (await s.list_tools()).tools
    tools = {t.name: t for t in run(server, body)}
    for name in TOOLS:
        assert name in tools, name
    for name in ["list_workloads", "get_workload", "get_workload_logs", "list_nodes",
                 "get_node", "get_cluster_status", "list_events", "list_pending_approvals",
                 "get_node_reputation", "get_credit_balance", "get_credit_history"]:
        assert tools[name].annotations.read_only_hint is True, name
    for name in ["delete_workload", "drain_node", "scale_workload"]:
        assert tools[name].annotations.read_only_hint is False, name
        assert tools[name].annotations.destructive_hint is True, name
    assert tools["create_workload"].annotations.destructive_hint is False
    # The manifest's schema comes from the shared type.
    manifest = tools["create_workload"].input_schema
    assert "manifest" in manifest["properties"], manifest


def test_create_scale_read_logs_and_delete(server):
    async def body(s):
        created = data_of(await s.call_tool("create_workload", {"manifest": MANIFEST}))
        assert created["spec"]["name"] == "web"
        scaled = data_of(await s.call_tool("scale_workload", {"workload": "web", "replicas": 3}))
        assert scaled["spec"]["replicas"] == 3
        got = data_of(await s.call_tool("get_workload", {"workload": "web"}))
        assert got["id"] == created["id"]
        logs = data_of(await s.call_tool("get_workload_logs", {"workload": "web", "tail": 10}))
        assert isinstance(logs["lines"], list) and logs["truncated"] is False
        status = data_of(await s.call_tool("get_cluster_status", {}))
        assert status["workloads_total"] >= 1
        nodes = data_of(await s.call_tool("list_nodes", {}))
        assert len(nodes["items"]) == 1
        deleted = data_of(await s.call_tool("delete_workload", {"workload": "web"}))
        assert deleted["id"] == created["id"]
        gone = await s.call_tool("get_workload", {"workload": "web"})
        assert gone.is_error and "web" in text_of(gone)
    run(server, body)


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
def test_both_protocol_revisions_over_stdio(server, mode):
    """2025-11-25 with the initialize handshake, and 2026-07-28 (stateless)."""
    name = f"rev-{mode.replace('-', '')}"

    @contextlib.asynccontextmanager
    async def connect():
        async with Client(server, mode=mode) as session:
            yield session

    async def body(s):
        assert "scale_workload" in {t.name for t in (await s.list_tools()).tools}
        data_of(await s.call_tool("create_workload", {"manifest": dict(MANIFEST, name=name)}))
        scaled = data_of(await s.call_tool("scale_workload", {"workload": name, "replicas": 2}))
        assert scaled["spec"]["replicas"] == 2
        r = await s.call_tool("scale_workload", {"workload": name, "replicas": "two"})
        assert r.is_error and "replicas" in text_of(r), text_of(r)
        data_of(await s.call_tool("delete_workload", {"workload": name}))
    run_with(connect, body)


def test_a_list_of_500_is_paged_through(server):
    async def body(s):
        for i in range(500):
            m = dict(MANIFEST, name=f"many-{i:03}")
            data_of(await s.call_tool("create_workload", {"manifest": m}))
        seen, cursor, pages = [], None, 0
        while True:
            args = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
            page = data_of(await s.call_tool("list_workloads", args))
            pages += 1
            assert len(page["items"]) <= 100
            seen += [w["spec"]["name"] for w in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        names = {n for n in seen if n.startswith("many-")}
        assert len(names) == 500 and len(seen) == len(set(seen))
        assert pages >= 5
    run(server, body)


def test_bad_arguments_are_tool_errors_that_name_them(server):
    async def body(s):
        r = await s.call_tool("list_workloads", {"limit": 101})
        assert r.is_error and "limit" in text_of(r)
        r = await s.call_tool("get_workload", {"workload": "no-such-workload"})
        assert r.is_error and "no-such-workload" in text_of(r)
        r = await s.call_tool("get_workload_logs", {"workload": "x", "tail": 0})
        assert r.is_error and "tail" in text_of(r)
        r = await s.call_tool("create_workload", {"manifest": dict(MANIFEST, replicas=100000)})
        assert r.is_error and "replicas" in text_of(r)
        # The server still serves.
        data_of(await s.call_tool("get_cluster_status", {}))
    run(server, body)


def test_arguments_of_the_wrong_type_are_tool_errors_naming_them(server):
    async def body(s):
        r = await s.call_tool("scale_workload", {"workload": "web", "replicas": "many"})
        assert r.is_error and "replicas" in text_of(r), text_of(r)
        r = await s.call_tool("list_workloads", {"limit": "ten"})
        assert r.is_error and "limit" in text_of(r), text_of(r)
        r = await s.call_tool("get_workload", {})
        assert r.is_error and "workload" in text_of(r), text_of(r)
        data_of(await s.call_tool("get_cluster_status", {}))
    run(server, body)


def test_resources_and_the_diagnose_prompt(server):
    async def body(s):
        m = dict(MANIFEST, name="diag")
        data_of(await s.call_tool("create_workload", {"manifest": m}))
        uris = [str(r.uri) for r in (await s.list_resources()).resources]
        assert "univrs://cluster/status" in uris, uris
        workloads = [u for u in uris if u.startswith("univrs://workloads/")]
        # Listed up to 100 (500 more exist here); every one is reachable by the template.
        assert 1 <= len(workloads) <= 100, len(workloads)
        templates = (await s.list_resource_templates()).resource_templates
        assert any("{workload}" in t.uri_template for t in templates)
        status = await s.read_resource("univrs://cluster/status")
        assert json.loads(status.contents[0].text)["workloads_total"] >= 1
        diag = await s.read_resource("univrs://workloads/diag")
        assert json.loads(diag.contents[0].text)["spec"]["name"] == "diag"
        prompts = {p.name: p for p in (await s.list_prompts()).prompts}
        assert "diagnose_workload" in prompts
        assert prompts["diagnose_workload"].arguments[0].name == "workload"
        got = await s.get_prompt("diagnose_workload", {"workload": "diag"})
        text = got.messages[0].content.text
        assert "diag" in text and "get_workload_logs" in text
        try:
            await s.read_resource("univrs://nothing/here")
            raised = False
        except Exception:
            raised = True
        assert raised, "an unknown resource is an error"
        data_of(await s.call_tool("get_cluster_status", {}))
    run(server, body)


def test_the_audit_log_records_the_agent_calls_and_detects_an_edit(user, daemon):
    auditor = StdioServerParameters(
        command=str(BIN / "ui"),
        args=["--config-dir", user.config, "--server", user.url, "mcp", "--agent", "audited-agent"],
        env=user.env)

    async def body(s):
        data_of(await s.call_tool("create_workload", {"manifest": dict(MANIFEST, name="audited")}))
        data_of(await s.call_tool("scale_workload", {"workload": "audited", "replicas": 2}))
        data_of(await s.call_tool("get_workload", {"workload": "audited"}))
        data_of(await s.call_tool("list_workloads", {"limit": 5}))
        r = await s.call_tool("get_workload", {"workload": "not-there"})
        assert r.is_error
    run(auditor, body)
    out = ui(user, "-o", "json", "audit", "--agent", "audited-agent")
    assert out.returncode == 0, out.stderr
    actions = [(e["action"], e["decision"], e["agent"]) for e in json.loads(out.stdout)["items"]]
    # Every call, reads and the refused one included, in order, and nothing else.
    assert actions == [
        ("POST /api/v1/workloads", "allowed", "audited-agent"),
        ("POST /api/v1/workloads/audited/scale", "allowed", "audited-agent"),
        ("GET /api/v1/workloads/audited", "allowed", "audited-agent"),
        # get_workload reads the workload, then its instances.
        ("GET /api/v1/workloads/audited/instances?limit=100", "allowed", "audited-agent"),
        ("GET /api/v1/workloads?limit=5", "allowed", "audited-agent"),
        ("GET /api/v1/workloads/not-there", "refused", "audited-agent"),
    ], actions
    ok = ui(user, "audit", "--verify")
    assert ok.returncode == 0, ok.stderr
    log = daemon[1] / "audit.log"
    lines = log.read_text().splitlines()
    entry = json.loads(lines[0])
    entry["args"] = entry["args"] + " "
    lines[0] = json.dumps(entry)
    log.write_text("\n".join(lines) + "\n")
    bad = ui(user, "audit", "--verify")
    assert bad.returncode != 0 and "does not verify" in bad.stderr, (bad.stdout, bad.stderr)
