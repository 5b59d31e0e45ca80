#!/usr/bin/env python3
"""Scripting WFM over its REST API (Python standard library only).

Builds a small WireGuard mesh from nothing and prints one node's rendered config:

    setup (first run) or login -> create a config -> create nodes (suggested virtual IPs)
    -> Quick Mesh full_mesh with preshared keys -> wg-preview of the first node

Usage:
    mesh_quickstart.py --server http://127.0.0.1:8000 --password 'admin password' \
        [--config-name demo] [--nodes 3] [--out DIR]

Every answer is the WFM/upstream envelope: {"success": true, "data": ...} or
{"success": false, "error": {"code": ..., "message": ..., "detail": ...}}. Errors are
reported with their stable code and the script exits non-zero. With --out, each node's
rendered config is written to DIR/<node name>.conf (mode 0600: it holds a private key).
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code = status, code


class Client:
    def __init__(self, server):
        self.base = server.rstrip("/") + "/api/v1"
        self.token = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        env = json.loads(raw or b"{}")
        if not env.get("success"):
            err = env.get("error") or {}
            raise ApiError(status, err.get("code", "UNKNOWN"), err.get("message", raw.decode(errors="replace")))
        return env.get("data")

    def sign_in(self, password):
        """Logs in; on a fresh server (428 AUTH_SETUP_REQUIRED) sets the password first."""
        try:
            data = self.call("POST", "/auth/login", {"username": "admin", "password": password})
        except ApiError as e:
            if e.code != "AUTH_SETUP_REQUIRED":
                raise
            data = self.call("POST", "/auth/setup", {"password": password})
        self.token = data["access_token"]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--config-name", default="demo")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--out")
    a = p.parse_args()

    c = Client(a.server)
    c.sign_in(a.password)
    cfg = c.call("POST", "/configs", {"name": a.config_name, "virtual_subnet": "10.77.0.0/24"})
    print(f"config {cfg['id']} ({cfg['name']})")

    nodes = []
    for i in range(a.nodes):
        ip = c.call("POST", f"/configs/{cfg['id']}/nodes/suggest-ip", {})
        node = c.call(
            "POST",
            f"/configs/{cfg['id']}/nodes",
            {
                "name": f"node-{i + 1}",
                "node_type": "static",
                "virtual_ip": ip["ip"],
                "ipv4_address": f"198.51.100.{i + 1}",
            },
        )
        nodes.append(node)
        print(f"node {node['id']} {node['name']} {node['virtual_ip']}")

    qm = c.call("POST", f"/configs/{cfg['id']}/mesh/quick-generate", {"mode": "full_mesh", "use_preshared_key": True})
    print(f"quick mesh: {json.dumps(qm, sort_keys=True)}")

    for n in nodes:
        pv = c.call("GET", f"/configs/{cfg['id']}/nodes/{n['id']}/wg-preview")
        if a.out:
            os.makedirs(a.out, exist_ok=True)
            path = os.path.join(a.out, f"{n['name']}.conf")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(pv["content"])
        if n is nodes[0]:
            print(f"--- {n['name']}.conf (sha256 {pv.get('sha256', '?')})")
            print(pv["content"], end="")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ApiError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
