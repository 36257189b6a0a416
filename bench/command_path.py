"""The command path: directives issued over HTTP per second, beside its baselines.

Each subject is served by uvicorn in a process of its own on a fresh store (a
fresh schema in PostgreSQL, or a SQLite file with ``--sqlite``); the load comes
over loopback from ``wrk`` (a C load generator that leaves the server the CPU:
C connections for ``--seconds``, the directives spread over K contracts), or,
with ``--load python`` or when wrk is missing, from this process (C threads,
one keep-alive connection each, N directives).  Subjects, run in turn within
each repeat so that noise from a shared machine falls on all:

- ``threadneedle``: the API as deployed (group commit on);
- ``one save per command``: the same API with ``NEEDLE_GROUP_COMMIT=0``;
- ``bare FastAPI``: an endpoint that parses the same body and records nothing;
- ``plain eventsourcing``: that endpoint plus one plain ``eventsourcing`` save;
- ``raw PostgreSQL inserts``: C connections, one single-row insert per transaction.

Reports medians of the repeats (throughput, p50, p99).  ``--profile DIR`` records
a py-spy profile (``--gil``) of each Threadneedle server during its timed run.

    .venv/bin/python bench/command_path.py [--quick] [--seconds 10] [-c 32] [--contracts 32]
        [--repeats 3] [--postgres URL | --sqlite] [--json PATH] [--profile DIR]
        [--load python -n 1500] [--workers N]   (full: 10 s or -n 1500, 3 repeats)

``--workers N`` serves every subject with ``uvicorn --workers N`` (Threadneedle with
``NEEDLE_API_PROCESSES=N``): its server CPU is that of all the processes.

Long because the five subjects share one way to serve, load (wrk, or the
Python load generator), profile and report them: split, each would repeat it.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


SUBJECTS = ("threadneedle", "one save per command", "bare FastAPI", "plain eventsourcing")
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="600 directives, one repeat")
    parser.add_argument("-n", "--directives", type=int, help="default 1,500 (600 quick)")
    parser.add_argument("-c", "--clients", type=int, default=32)
    parser.add_argument("--contracts", type=int, default=32,
                        help="spread the directives over this many contracts (default 32)")
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--postgres", metavar="URL",
                        default=os.environ.get("NEEDLE_BENCH_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL")
    parser.add_argument("--warmup", type=int, default=200, help="directives sent before timing")
    parser.add_argument("--only", nargs="*", choices=[*SUBJECTS, "raw"], help="some subjects")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--load", choices=("wrk", "python"),
                        default="wrk" if shutil.which("wrk") else "python",
                        help="the load generator (default wrk when installed)")
    parser.add_argument("--seconds", type=float, help="wrk: timed seconds (default 10; 4 quick)")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn processes serving each subject (default 1)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy record (--gil) each Threadneedle server's timed run here")
    args = parser.parse_args()
    args.directives = args.directives or (600 if args.quick else 1500)
    args.seconds = args.seconds or (4.0 if args.quick else 10.0)
    args.repeats = args.repeats or (1 if args.quick else 3)
    postgres = None if args.sqlite else args.postgres
    chosen = args.only or [*SUBJECTS, "raw"]
    runs: dict[str, list[dict[str, Any]]] = {}
    for repeat in range(args.repeats):
        for subject in [s for s in SUBJECTS if s in chosen]:
            run = measure(subject, args, postgres)
            runs.setdefault(subject, []).append(run)
            print(f"  [{repeat + 1}/{args.repeats}] {subject:22s} {summary(run)}", flush=True)
        if "raw" in chosen and postgres:
            run = raw_inserts(postgres, args.clients, args.directives)
            runs.setdefault("raw PostgreSQL inserts", []).append(run)
            print(f"  [{repeat + 1}/{args.repeats}] raw PostgreSQL inserts {summary(run)}",
                  flush=True)
    results = {subject: medians(subject_runs) for subject, subject_runs in runs.items()}
    report(args, postgres, results)
    if args.json:
        args.json.write_text(json.dumps({
            "store": "postgresql" if postgres else "sqlite", "directives": args.directives,
            "clients": args.clients, "contracts": args.contracts, "repeats": args.repeats,
            "workers": args.workers,
            "results": results, "runs": runs}, indent=2), "utf-8")


def measure(subject: str, args: argparse.Namespace, postgres: str | None) -> dict[str, Any]:
    """One run of one subject on a fresh store."""
    with tempfile.TemporaryDirectory(prefix="needle-bench-") as folder:
        env, schema = store_env(Path(folder), postgres)
        admin_key = secrets.token_urlsafe(24)
        env["NEEDLE_ADMIN_KEY"] = admin_key
        env["NEEDLE_API_PROCESSES"] = str(args.workers)
        env["NEEDLE_GROUP_COMMIT"] = "0" if subject == "one save per command" else "1"
        bare = subject in ("bare FastAPI", "plain eventsourcing")
        env["BENCH_BARE_MODE"] = "eventsourcing" if subject == "plain eventsourcing" else "parse"
        port = free_port()
        server = start_api(env, port, "bench.bare_api:create_app" if bare else None,
                           args.workers)
        try:
            base_url = f"http://127.0.0.1:{port}"
            wait_until_ready(base_url, server)
            targets = (bare_targets(args.contracts) if bare
                       else prepare(base_url, admin_key, args.contracts))
            if args.load == "wrk":
                wrk(port, targets, 1.0, args.clients)  # warm up
                cpu, threads = cpu_seconds(server.pid), thread_cpu_seconds(server.pid)
                with profiling(args.profile, subject, server.pid, args.seconds):
                    result = outcome(wrk(port, targets, args.seconds, args.clients))
            else:
                fire(port, targets, args.warmup, args.clients)
                cpu, threads = cpu_seconds(server.pid), thread_cpu_seconds(server.pid)
                with profiling(args.profile, subject, server.pid, 30):
                    result = outcome(fire(port, targets, args.directives, args.clients))
            answered = max(1, result.pop("answered"))
            result["server_cpu_ms"] = (cpu_seconds(server.pid) - cpu) * 1000 / answered
            used = sorted((seconds - threads.get(tid, 0.0) for tid, seconds
                           in thread_cpu_seconds(server.pid).items() if tid != server.pid),
                          reverse=True)
            loop = thread_cpu_seconds(server.pid).get(server.pid, 0.0) - threads.get(server.pid, 0)
            result["loop_cpu_ms"] = loop * 1000 / answered
            result["busiest_thread_cpu_ms"] = (used[0] if used else 0.0) * 1000 / answered
        finally:
            server.terminate()
            server.wait(timeout=15)
            if schema and postgres:
                drop_schema(postgres, schema)
    return result


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) the process and its children (uvicorn's workers) have
    used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = [int(child) for task in Path(f"/proc/{pid}/task").iterdir()
                for child in (task / "children").read_text().split()]
    return own + sum(cpu_seconds(child) for child in children)


def thread_cpu_seconds(pid: int) -> dict[int, float]:
    """The CPU time (user + system) each thread of the process has used so far, by thread id
    (the main thread's id is the process's)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            used[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return used


def bare_targets(contracts: int) -> list[tuple[str, str]]:
    return [(f"/v1/contracts/{uuid.uuid4()}/directives", "bare") for _ in range(contracts)]


def outcome(result: dict[str, Any]) -> dict[str, Any]:
    if "rate" in result:  # wrk's own summary
        return result
    latencies, failures = result["latencies"], result["failures"]
    recorded = len(latencies) - len(failures)
    return {"rate": recorded / result["elapsed"], "answered": len(latencies),
            "p50_ms": percentile(latencies, .5) * 1000,
            "p99_ms": percentile(latencies, .99) * 1000, "failures": len(failures),
            "failure_examples": failures[:3]}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"rate": statistics.median(r["rate"] for r in runs),
            "p50_ms": statistics.median(r["p50_ms"] for r in runs),
            "p99_ms": statistics.median(r["p99_ms"] for r in runs),
            "failures": sum(r["failures"] for r in runs),
            "server_cpu_ms": statistics.median(r["server_cpu_ms"] for r in runs),
            "loop_cpu_ms": statistics.median(r.get("loop_cpu_ms", 0.0) for r in runs),
            "busiest_thread_cpu_ms": statistics.median(r.get("busiest_thread_cpu_ms", 0.0)
                                                       for r in runs),
            "rates": [round(r["rate"], 1) for r in runs]}


def summary(run: dict[str, Any]) -> str:
    text = (f"{run['rate']:8.0f}/s  p50 {run['p50_ms']:7.1f} ms  p99 {run['p99_ms']:7.1f} ms"
            f"  server CPU {run['server_cpu_ms']:5.2f} ms/request (event loop "
            f"{run.get('loop_cpu_ms', 0):4.2f}, busiest other thread "
            f"{run.get('busiest_thread_cpu_ms', 0):4.2f})  failures {run['failures']}")
    return text + "".join(f"\n      {f}" for f in run.get("failure_examples", []))


def raw_inserts(postgres: str, clients: int, total: int) -> dict[str, Any]:
    """The floor of the store: C connections, one single-row insert + commit each time."""
    import psycopg

    table = f"bench_raw_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (id bigserial PRIMARY KEY, "
                           "originator_id uuid, originator_version int, state bytea)")
    counter = iter(range(total))
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        mine = []
        with psycopg.connect(postgres, autocommit=True) as connection:
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    break
                started = time.perf_counter()
                connection.execute(f"INSERT INTO {table} (originator_id, originator_version, "
                                   "state) VALUES (%s, %s, %s)", (uuid.uuid4(), n, b"x" * 400))
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    elapsed = run_clients(lambda _: client(), clients)
    with psycopg.connect(postgres, autocommit=True) as connection:
        connection.execute(f"DROP TABLE {table}")
    result = outcome({"elapsed": elapsed, "latencies": latencies, "failures": []})
    result.pop("answered")
    return {**result, "server_cpu_ms": 0.0}  # no server process of ours here


def store_env(folder: Path, postgres: str | None) -> tuple[dict[str, str], str | None]:
    """The server's environment: a fresh store, and the Redis the suite was told about."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEEDLE_")}
    env["NEEDLE_VAR_DIR"] = str(folder / "var")
    if os.environ.get("NEEDLE_BENCH_REDIS_URL"):
        env["NEEDLE_REDIS_URL"] = os.environ["NEEDLE_BENCH_REDIS_URL"]
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


def start_api(env: dict[str, str], port: int, factory: str | None = None, workers: int = 1
              ) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "uvicorn", "--factory", factory or "api.main:create_app",
               "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
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


def contract_terms(n: int) -> dict[str, Any]:
    """The terms of the benchmark's ``n``-th contract (purchaser ``haizhu-street``)."""
    return {
        "code": f"HZ-YOUTH-{n}", "title": "海珠区青少年服务", "purchaser": "haizhu-street",
        "provider": "qizhi", "budget": {"amount": "2000000.00", "currency": "CNY"},
        "period": {"start": "2008-06-01", "end": "2009-05-31"},
        "capacity": {"staff": 14, "hours_per_staff_week": 40, "committed_hours_per_week": 400},
        "stakeholders": [{"org": "haizhu-street"}],
    }


def directive_body(n: int) -> dict[str, Any]:
    """The ``n``-th directive sent (the wrk script's Lua writes the same body)."""
    return {"subject": f"youth_zone.item_{n % 50}", "value": n,
            "summary": f"第{n}条指令 directive {n}", "basis": "purchaser_request",
            "hours_per_week": 1, "people_affected": 20, "vulnerability": 0.3}


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
        contract_id = ok("POST", "/v1/contracts", contract_terms(n), 201)["id"]
        ok("POST", f"/v1/contracts/{contract_id}/activate", None, 200)
        targets.append((f"/v1/contracts/{contract_id}/directives", key))
    return targets


def fire(port: int, targets: list[tuple[str, str]], total: int, clients: int
         ) -> dict[str, Any]:
    """C threads, each on its own keep-alive connection (``http.client``: the lightest
    client in the standard library, so the load generator takes little of the 2 CPUs)."""
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()

    def client(index: int) -> None:
        path, key = targets[index % len(targets)]
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            body = json.dumps(directive_body(n), ensure_ascii=False).encode()
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 201:
                with lock:
                    failures.append(f"{response.status} {answer[:200]!r}")
        connection.close()
        with lock:
            latencies.extend(mine)

    elapsed = run_clients(client, clients)
    return {"elapsed": elapsed, "latencies": latencies, "failures": failures}


WRK_SCRIPT = """
local targets = {%s}
local n = 0
function request()
  n = n + 1
  local t = targets[(n %% #targets) + 1]
  local body = string.format('{"subject":"youth_zone.item_%%d","value":%%d,' ..
    '"summary":"第%%d条指令 directive %%d","basis":"purchaser_request","hours_per_week":1,' ..
    '"people_affected":20,"vulnerability":0.3}', n %% 50, n, n, n)
  return wrk.format("POST", t[1], {["Authorization"] = "Bearer " .. t[2],
                                   ["Content-Type"] = "application/json"}, body)
end
"""


def wrk(port: int, targets: list[tuple[str, str]], seconds: float, clients: int
        ) -> dict[str, Any]:
    """``wrk`` for ``seconds`` with C connections, cycling through the targets."""
    lua = WRK_SCRIPT % ", ".join(f'{{"{path}", "{key}"}}' for path, key in targets)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", encoding="utf-8") as script:
        script.write(lua)
        script.flush()
        run = subprocess.run(
            ["wrk", "-t", "2", "-c", str(clients), "-d", f"{max(1, round(seconds))}s",
             "--timeout", "30s", "--latency", "-s", script.name, f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True)
    return parse_wrk(run.stdout)


def parse_wrk(text: str) -> dict[str, Any]:
    def duration(value: str) -> float:  # wrk prints 812.00us, 12.34ms, 1.02s, 1.50m
        units = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
        number, unit = re.fullmatch(r"([\d.]+)([a-z]+)", value).groups()  # type: ignore[union-attr]
        return float(number) * units[unit]

    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", text, re.M))
    if set(latency) != {"50", "99"}:
        raise SystemExit(f"wrk's answer has no latency distribution:\n{text}")
    requests, elapsed = re.search(r"(\d+) requests in ([\d.]+[a-z]+)", text).groups()  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    failures = int(non_2xx.group(1)) if non_2xx else 0
    seconds = duration(elapsed) / 1e3
    return {"rate": (int(requests) - failures) / seconds, "answered": int(requests),
            "p50_ms": duration(latency["50"]),
            "p99_ms": duration(latency["99"]), "failures": failures,
            "failure_examples": [f"socket errors: {errors.group(1)}"] if errors else []}


@contextlib.contextmanager
def profiling(folder: Path | None, subject: str, pid: int, seconds: float) -> Iterator[None]:
    """py-spy (``--gil``) on the server while the block runs, when a folder is given."""
    if folder is None or subject != "threadneedle":
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"command-path-{time.strftime('%H%M%S')}"
    spy = subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--gil", "--subprocesses",
         "-r", "200",
         "-d", str(int(seconds) + 1), "-f", "raw", "-o", f"{out}.txt", "--pid", str(pid)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        spy.wait(timeout=60)


def run_clients(client: Callable[[int], None], clients: int) -> float:
    """Run ``client(0)`` … ``client(clients - 1)`` on threads at once; the seconds they took."""
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    return f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}, " \
        f"commit {commit}"


def report(args: argparse.Namespace, postgres: str | None,
           results: dict[str, dict[str, Any]]) -> None:
    store = "PostgreSQL" if postgres else "SQLite"
    load = (f"wrk for {args.seconds:.0f} s" if args.load == "wrk"
            else f"{args.directives} directives")
    print(f"command path on {store}: {load}, {args.clients} clients, "
          f"{args.contracts} contracts, {args.workers} server process(es) each, "
          f"medians of {args.repeats} ({machine()})")
    ours = results.get("threadneedle", {}).get("rate")
    for subject, result in results.items():
        ratio = f"{ours / result['rate']:.2f} ×" if ours and result["rate"] else ""
        print(f"  {subject:24s} {result['rate']:8.0f}/s  p50 {result['p50_ms']:7.1f} ms  "
              f"p99 {result['p99_ms']:7.1f} ms  CPU {result['server_cpu_ms']:5.2f} ms/req  "
              f"threadneedle ÷ this {ratio}")


if __name__ == "__main__":
    main()
