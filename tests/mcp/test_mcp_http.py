"""The MCP server over streamable HTTP (`/mcp` on the daemon), driven by the
official Python MCP SDK with agent tokens, and the automation boundaries the
daemon enforces whatever the transport.

Runs before test_mcp_stdio.py (whose last test tampers with the audit log).
"""

import httpx2
import pytest

from conftest import MANIFEST, TOOLS, User, data_of, http, run, text_of, wait_for

MODES = ["legacy", "2026-07-28"]


def raw_mcp(url, token):
    """POSTs an MCP initialize to /mcp with `token`; the HTTP answer."""
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "0"}}}
    return httpx2.post(f"{url}/mcp", headers=headers, json=body, timeout=10)


@pytest.fixture(scope="module")
def owner(daemon):
    """A user whose agent may do everything alone."""
    return User(daemon[0], autonomous=TOOLS)


@pytest.fixture(scope="module")
def governed(daemon):
    """A user with a real policy: deletes need approval, node changes are forbidden."""
    return User(daemon[0],
                autonomous=["list_workloads", "get_workload", "create_workload",
                            "scale_workload", "get_workload_logs", "list_pending_approvals",
                            "get_node", "list_nodes", "get_cluster_status"],
                require_approval=["delete_workload"],
                forbidden=["drain_node", "cordon_node"])


@pytest.mark.parametrize("mode", MODES)
def test_tools_create_scale_logs_over_http(owner, mode):
    token, _ = owner.token("http-agent", ["*"])
    name = f"web-{mode.replace('-', '')}"

    async def body(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert set(TOOLS) <= set(tools), sorted(tools)
        assert tools["delete_workload"].annotations.destructive_hint is True
        created = data_of(await s.call_tool("create_workload",
                                            {"manifest": dict(MANIFEST, name=name)}))
        assert created["spec"]["name"] == name
        scaled = data_of(await s.call_tool("scale_workload", {"workload": name, "replicas": 3}))
        assert scaled["spec"]["replicas"] == 3
        logs = data_of(await s.call_tool("get_workload_logs", {"workload": name, "tail": 5}))
        assert isinstance(logs["lines"], list)
        events = data_of(await s.call_tool("list_events", {"limit": 50}))
        assert any(e["type"].startswith("workloads.") for e in events["items"]), events
        r = await s.call_tool("scale_workload", {"workload": name, "replicas": "many"})
        assert r.is_error and "replicas" in text_of(r), text_of(r)
        r = await s.call_tool("scale_workload", {"workload": name, "replicas": 100000})
        assert r.is_error and "replicas" in text_of(r), text_of(r)
        r = await s.call_tool("get_workload", {"workload": "no-such-workload"})
        assert r.is_error and "no-such-workload" in text_of(r)
        data_of(await s.call_tool("get_cluster_status", {}))  # still serving
    run(http(owner.url, token, mode), body)


def test_a_list_of_500_is_paged_through_over_http(owner):
    token, _ = owner.token("pager", ["create_workload", "list_workloads"])

    async def body(s):
        for i in range(500):
            m = dict(MANIFEST, name=f"page-{i:03}")
            data_of(await s.call_tool("create_workload", {"manifest": m}))
        seen, cursor = [], None
        while True:
            args = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
            page = data_of(await s.call_tool("list_workloads", args))
            assert len(page["items"]) <= 100
            seen += [w["spec"]["name"] for w in page["items"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        assert len({n for n in seen if n.startswith("page-")}) == 500
        assert len(seen) == len(set(seen))
    run(http(owner.url, token), body)


def test_the_policy_forbids_holds_for_approval_and_lets_run(governed):
    token, _ = governed.token("governed-agent", ["*"])
    node = governed.ui_json("node", "status")["items"][0]["id"]

    async def body(s):
        data_of(await s.call_tool("create_workload", {"manifest": dict(MANIFEST, name="keep")}))
        # Forbidden: refused, naming the policy; nothing changes.
        r = await s.call_tool("drain_node", {"node": node})
        assert r.is_error and "forbidden by your automation policy" in text_of(r), text_of(r)
        assert data_of(await s.call_tool("get_node", {"node": node}))["unschedulable"] is False
        # Autonomous: runs.
        scaled = data_of(await s.call_tool("scale_workload", {"workload": "keep", "replicas": 2}))
        assert scaled["spec"]["replicas"] == 2
        # Approval required: a pending id, and the workload is still there.
        held = data_of(await s.call_tool("delete_workload", {"workload": "keep"}))
        pending = held["pending_approval"]
        assert pending["state"] == "pending" and pending["tool"] == "delete_workload"
        data_of(await s.call_tool("get_workload", {"workload": "keep"}))
        listed = data_of(await s.call_tool("list_pending_approvals", {}))
        assert pending["id"] in [a["id"] for a in listed["items"]]
        return pending["id"]
    approval = run(http(governed.url, token), body)

    # The agent cannot approve its own call: approving is not a tool.
    r = httpx2.post(f"{governed.url}/api/v1/approvals/{approval}/approve",
                    headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403, r.text
    assert governed.ui_json("status", "keep")["workload"]["spec"]["name"] == "keep"

    listed = governed.ui_json("approvals", "list")
    assert approval in [a["id"] for a in listed["items"]]
    done = governed.ui_json("approvals", "approve", approval)
    assert done["state"] == "approved" and done["result"]["status"] == 200, done
    assert governed.ui("status", "keep").returncode != 0, "the workload is deleted"
    twice = governed.ui("approvals", "approve", approval)
    assert twice.returncode != 0 and "already" in twice.stderr, twice.stderr
    denied_later = governed.ui("approvals", "deny", approval)
    assert denied_later.returncode != 0

    audit = governed.ui_json("audit", "--agent", "governed-agent")["items"]
    decisions = [(e["action"], e["decision"]) for e in audit]
    assert (f"POST /api/v1/nodes/{node}/drain", "refused") in decisions, decisions
    assert ("POST /api/v1/workloads/keep/scale", "allowed") in decisions
    assert ("DELETE /api/v1/workloads/keep", "pending_approval") in decisions
    assert [d for d in decisions if d == ("DELETE /api/v1/workloads/keep", "approved")] == \
        [("DELETE /api/v1/workloads/keep", "approved")], "the approved call ran exactly once"


def test_an_agent_is_refused_when_its_user_disabled_ai(daemon):
    off = User(daemon[0], autonomous=TOOLS, ai=False)
    token, _ = off.token("off-agent", ["*"])

    async def body(s):
        r = await s.call_tool("list_workloads", {})
        assert r.is_error and "disabled" in text_of(r), text_of(r)
    run(http(off.url, token), body)


def test_bad_tokens_are_refused(owner, daemon):
    url = owner.url
    assert raw_mcp(url, None).status_code == 401
    good, good_id = owner.token("tok", ["list_workloads"])
    assert raw_mcp(url, good).status_code == 200

    # Tampered: one character of the claims changed.
    prefix, claims, sig = good.rsplit(".", 2)
    flipped = claims[:10] + ("A" if claims[10] != "A" else "B") + claims[11:]
    r = raw_mcp(url, f"{prefix}.{flipped}.{sig}")
    assert r.status_code == 401, r.text

    # Expired.
    short, _ = owner.token("short", ["list_workloads"], expires="1s")
    r = wait_for("the 1 s token to expire",
                 lambda: (lambda r: r if r.status_code == 401 else None)(raw_mcp(url, short)))
    assert "expired" in r.text, r.text

    # Out of scope: a tool the token does not name.
    async def body(s):
        r = await s.call_tool("scale_workload", {"workload": "web-legacy", "replicas": 1})
        assert r.is_error and "does not allow" in text_of(r), text_of(r)
        data_of(await s.call_tool("list_workloads", {}))
    run(http(url, good), body)

    # Revoked.
    owner.ui_ok("agent", "token", "revoke", good_id)
    r = raw_mcp(url, good)
    assert r.status_code == 401 and "revoked" in r.text, r.text

    # Another user's token cannot touch the owner's workloads.
    stranger = User(daemon[0], autonomous=TOOLS)
    theirs, _ = stranger.token("stranger", ["*"])

    async def other(s):
        for call, args in [("get_workload", {"workload": "page-000"}),
                           ("scale_workload", {"workload": "page-000", "replicas": 5}),
                           ("delete_workload", {"workload": "page-000"})]:
            r = await s.call_tool(call, args)
            assert r.is_error, (call, text_of(r))
        names = [w["spec"]["name"] for w in
                 data_of(await s.call_tool("list_workloads", {}))["items"]]
        assert "page-000" not in names
    run(http(url, theirs), other)
    assert owner.ui_json("status", "page-000")["workload"]["spec"]["replicas"] == 1

    # The refusal after authentication is on record: the REST call for the
    # tool out of scope. Those at /mcp, before any caller is authenticated
    # (no token, tampered, expired, revoked), are counted, not recorded: the
    # audit log holds only authenticated callers.
    audit = owner.ui_json("audit", "--agent", "tok")["items"]
    assert any(e["decision"] == "refused" and "scale" in e["action"] for e in audit), audit
    assert not any(e["action"] == "POST /mcp" for e in audit), audit
    expired = owner.ui_json("audit", "--agent", "short")["items"]
    assert not any(e["action"] == "POST /mcp" for e in expired), expired
    metrics = httpx2.get(f"{url}/metrics", timeout=10).text
    counted = [line for line in metrics.splitlines()
               if line.startswith('orchestrator_api_auth_refused_total{reason="bad_token"}')]
    assert counted and float(counted[0].split()[-1]) >= 4, counted
