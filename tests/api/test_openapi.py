"""Schemathesis against the daemon's own OpenAPI document.

Every generated request is signed exactly as SPEC §11 says, signing scheme v2
(a requests auth hook signs the final method, path with query, timestamp, body
bytes, the daemon's audience from GET /api/v1/info, and X-Univrs-Agent), and
every response must be no 5xx, carry a documented status code and content
type, and match the documented schema.

Run by scripts/schemathesis, which starts a daemon and sets UNIVRS_API.
"""

import base64
import datetime
import hashlib
import os

import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

BASE = os.environ["UNIVRS_API"]
# What requests are signed for: the cluster id, or a standalone node's own id.
AUDIENCE = requests.get(f"{BASE}/api/v1/info", timeout=10).json()["audience"]
KEY = Ed25519PrivateKey.from_private_bytes(bytes([7] * 32))
PUBLIC = base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
).decode()


def signing_message(method, path, ts, body, audience, agent=""):
    """Signing scheme v2: METHOD\\nPATH\\nTIMESTAMP\\nhex(sha256(body))\\nAUDIENCE\\nAGENT."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{method}\n{path}\n{ts}\n{digest}\n{audience}\n{agent}".encode()


class Sign(requests.auth.AuthBase):
    """Signs the prepared request for AUDIENCE (and its X-Univrs-Agent, if any)."""

    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        agent = r.headers.get("X-Univrs-Agent", "")
        message = signing_message(r.method, r.path_url, ts, body, AUDIENCE, agent)
        r.headers["X-Auth-PublicKey"] = PUBLIC
        r.headers["X-Auth-Timestamp"] = ts
        r.headers["X-Auth-Signature"] = base64.b64encode(KEY.sign(message)).decode()
        return r


SESSION = requests.Session()
SESSION.auth = Sign()
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

schema = schemathesis.openapi.from_url(f"{BASE}/api/v1/openapi.json")


@schema.parametrize()
@settings(max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "40")), deadline=None,
          suppress_health_check=list(HealthCheck))
def test_api(case):
    response = case.call(base_url=BASE, session=SESSION, timeout=10)
    case.validate_response(response, checks=CHECKS)


def test_the_document_is_served_unsigned_and_lists_every_route():
    doc = requests.get(f"{BASE}/api/v1/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.")
    for path in ["/api/v1/workloads", "/api/v1/workloads/{ref}", "/api/v1/workloads/{ref}/scale",
                 "/api/v1/workloads/{ref}/instances", "/api/v1/workloads/{ref}/logs", "/api/v1/nodes",
                 "/api/v1/nodes/{id}", "/api/v1/cluster/status"]:
        assert path in doc["paths"], path


def test_a_signed_request_works_and_an_unsigned_one_is_refused():
    assert requests.get(f"{BASE}/api/v1/workloads", timeout=10).status_code == 401
    r = SESSION.get(f"{BASE}/api/v1/workloads?limit=5", timeout=10)
    assert r.status_code == 200, r.text
    assert "items" in r.json()


def test_info_is_unsigned_and_a_request_signed_for_another_audience_is_refused():
    info = requests.get(f"{BASE}/api/v1/info", timeout=10).json()
    assert info["audience"] == AUDIENCE and info["node_id"] and info["version"]
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = "/api/v1/workloads?limit=5"
    headers = {
        "X-Auth-PublicKey": PUBLIC,
        "X-Auth-Timestamp": ts,
        "X-Auth-Signature": base64.b64encode(
            KEY.sign(signing_message("GET", path, ts, b"", "another-cluster"))).decode(),
    }
    r = requests.get(f"{BASE}{path}", headers=headers, timeout=10)
    assert r.status_code == 401, r.text
    assert AUDIENCE in r.json()["error"]["message"], r.text
