"""A first measurement of the command path: directives issued over HTTP, per second.

Starts the API with uvicorn in a subprocess on a fresh store (a SQLite file,
or a fresh schema in the PostgreSQL database given with ``--postgres``),
prepares an organisation, contracts and a stakeholder key through the API, then
fires N directives from C concurrent clients in *this* process (httpx, one
connection per thread) and prints directives/second and p50/p99 latency.

    .venv/bin/python bench/command_path.py -n 2000 -c 32
    .venv/bin/python bench/command_path.py --postgres postgresql://postgres@127.0.0.1:5432/postgres

This is the first measurement only; the full suite (with baselines) is a later issue.
"""

from __future__ import annotations

import argparse
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--directives", type=int, default=2000)
    parser.add_argument("-c", "--clients", type=int, default=32)
    parser.add_argument("--contracts", type=int, default=1,
                        help="spread the directives over this many contracts (default 1)")
    parser.add_argument("--postgres", metavar="URL", help="a postgresql:// URL (default SQLite)")
    parser.add_argument("--warmup", type=int, default=100, help="directives sent before timing")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="needle-bench-") as folder:
        env, schema = store_env(Path(folder), args.postgres)
        admin_key = secrets.token_urlsafe(24)
        env["NEEDLE_ADMIN_KEY"] = admin_key
        port = free_port()
        server = start_api(env, port)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(base_url, server)
            targets = prepare(base_url, admin_key, args.contracts)
            fire(base_url, targets, args.warmup, args.clients)
            result = fire(base_url, targets, args.directives, args.clients)
        finally:
            server.terminate()
            server.wait(timeout=15)
            if schema:
                drop_schema(args.postgres, schema)
    report(args, result)


def store_env(folder: Path, postgres: str | None) -> tuple[dict[str, str], str | None]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("NEEDLE_") or k == "NEEDLE_GROUP_COMMIT"}
    env["NEEDLE_VAR_DIR"] = str(folder / "var")
    if not postgres:
        env["NEEDLE_EVENT_STORE"] = str(folder / "bench.sqlite")
        return env, None
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    env["NEEDLE_EVENT_STORE"] = postgres
    env["NEEDLE_EVENT_STORE_SCHEMA"] = schema
    return env, schema


def drop_schema(postgres: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_api(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
               "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
    return subprocess.Popen(command, cwd=ROOT, env=env)


def wait_until_ready(base_url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the API exited with {server.returncode}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("the API did not become ready in 30 s")


def prepare(base_url: str, admin_key: str, contracts: int) -> list[tuple[str, str]]:
    """Organisations, active contracts and one stakeholder key; returns (path, key) pairs."""
    admin = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {admin_key}"})

    def ok(method: str, path: str, body: Any, status: int) -> dict[str, Any]:
        response = admin.request(method, path, json=body)
        assert response.status_code == status, response.text
        result: dict[str, Any] = response.json()
        return result

    ok("POST", "/v1/organizations", {"id": "haizhu-street", "name": "海珠区江南中街街道办事处",
                                     "kind": "street_office"}, 201)
    ok("POST", "/v1/organizations", {"id": "qizhi", "name": "启智社会工作服务中心",
                                     "kind": "provider"}, 201)
    key = ok("POST", "/v1/keys", {"org": "haizhu-street", "role": "stakeholder"}, 201)["key"]
    targets = []
    for n in range(contracts):
        terms = {
            "code": f"HZ-YOUTH-{n}", "title": "海珠区青少年服务", "purchaser": "haizhu-street",
            "provider": "qizhi", "budget": {"amount": "2000000.00", "currency": "CNY"},
            "period": {"start": "2008-06-01", "end": "2009-05-31"},
            "capacity": {"staff": 14, "hours_per_staff_week": 40,
                         "committed_hours_per_week": 400},
            "stakeholders": [{"org": "haizhu-street"}],
        }
        contract_id = ok("POST", "/v1/contracts", terms, 201)["id"]
        ok("POST", f"/v1/contracts/{contract_id}/activate", None, 200)
        targets.append((f"/v1/contracts/{contract_id}/directives", key))
    return targets


def fire(base_url: str, targets: list[tuple[str, str]], total: int, clients: int
         ) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()

    def client(index: int) -> None:
        path, key = targets[index % len(targets)]
        http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"},
                            timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body = {"subject": f"youth_zone.item_{n % 50}", "value": n,
                    "summary": f"第{n}条指令 directive {n}", "basis": "purchaser_request",
                    "hours_per_week": 1, "people_affected": 20, "vulnerability": 0.3}
            started = time.perf_counter()
            response = http.post(path, json=body)
            mine.append(time.perf_counter() - started)
            if response.status_code != 201:
                with lock:
                    failures.append(f"{response.status_code} {response.text[:200]}")
        with lock:
            latencies.extend(mine)
        http.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "latencies": latencies, "failures": failures}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    latencies, failures = result["latencies"], result["failures"]
    store = "postgresql" if args.postgres else "sqlite"
    recorded = len(latencies) - len(failures)
    print(f"store={store} directives={args.directives} clients={args.clients} "
          f"contracts={args.contracts} (after {args.warmup} warm-up directives)")
    print(f"  {recorded / result['elapsed']:.0f} directives/s recorded "
          f"({recorded} in {result['elapsed']:.2f} s), failures: {len(failures)}")
    print(f"  latency p50 {percentile(latencies, 0.50) * 1000:.1f} ms, "
          f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
          f"mean {statistics.fmean(latencies) * 1000:.1f} ms")
    for failure in failures[:5]:
        print(f"  failure: {failure}")


if __name__ == "__main__":
    main()
