"""The benchmark suite: every bar of SPEC section 11 in one run, beside its baselines.

Runs each benchmark script in a process of its own (each measures its
baselines in the same run and reports medians of repeats), then prints one
table of every bar — measured median, baselines, ratio, met or not — with the
commit and the machine, and writes it into ``docs/benchmarks.md`` between the
``bench:suite`` markers.  The scripts write their own detailed sections; the
"Webhooks" section belongs to ``bench/webhooks.py`` and is run only when that
script exists.

    .venv/bin/python bench/suite.py            # full sizes, about 10-15 minutes
    .venv/bin/python bench/suite.py --quick    # a few minutes; writes var/bench/ only

``NEEDLE_BENCH_REDIS_URL`` names the Redis the benchmarks may flush;
``NEEDLE_BENCH_POSTGRES`` the PostgreSQL they make schemas in (default
``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report import write_section

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
TIMEOUT_SECONDS = 900


@dataclass
class Row:
    area: str
    measure: str
    result: str
    baseline: str
    ratio: str
    bar: str
    met: str


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--out", type=Path,
                        help="the Markdown file (default docs/benchmarks.md; "
                             "var/bench/benchmarks-quick.md with --quick)")
    parser.add_argument("--only", nargs="*", help="some of: command projections detection "
                                                  "webhooks pages")
    args = parser.parse_args()
    out = args.out or (ROOT / "var" / "bench" / "benchmarks-quick.md" if args.quick
                       else ROOT / "docs" / "benchmarks.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.quick and not out.exists() and (ROOT / "docs" / "benchmarks.md").exists():
        out.write_text((ROOT / "docs" / "benchmarks.md").read_text("utf-8"), "utf-8")
    postgres = os.environ.get("NEEDLE_BENCH_POSTGRES", DEFAULT_POSTGRES)
    began = time.perf_counter()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="needle-suite-") as folder:
        for name, build in STEPS.items():
            if args.only and name not in args.only:
                continue
            script = ROOT / "bench" / SCRIPTS[name]
            if not script.exists():
                print(f"suite: {script.name} not found, skipped", flush=True)
                continue
            result = Path(folder) / f"{name}.json"
            command = [sys.executable, str(script), *(["--quick"] if args.quick else []),
                       "--json", str(result), *extra_args(name, out, args.quick)]
            env = {**os.environ, "NEEDLE_BENCH_POSTGRES": postgres}
            if name == "projections":  # the bars are for PostgreSQL
                env.update(NEEDLE_EVENT_STORE=postgres)
            print(f"suite: {' '.join(command[1:])}", flush=True)
            started = time.perf_counter()
            try:
                status = subprocess.run(command, cwd=ROOT, env=env,
                                        timeout=TIMEOUT_SECONDS).returncode
            except subprocess.TimeoutExpired:
                status = -1
            print(f"suite: {name} took {time.perf_counter() - started:.0f} s", flush=True)
            if status != 0 or not result.exists():
                rows.append(Row(name, "the benchmark failed", f"exit {status}", "", "", "",
                                "NOT MEASURED"))
                continue
            rows.extend(build(json.loads(result.read_text("utf-8"))))
    rows.extend(tested_bars())
    text = section(rows, args.quick, time.perf_counter() - began)
    write_section(out, "suite", text, first=True)
    print(text)
    print(f"suite: written to {out}")


SCRIPTS = {"command": "command_path.py", "projections": "projections.py",
           "detection": "detection.py", "webhooks": "webhooks.py", "pages": "pages.py"}


FULL_ARGS = {  # full sizes, trimmed so the suite stays near 15 minutes on 2 busy cores
    "command": ["-n", "1000"],
    "projections": ["--lag-seconds", "10"],
    "detection": ["--repeat", "7"],
}


def extra_args(name: str, out: Path, quick: bool) -> list[str]:
    sizes = [] if quick else FULL_ARGS.get(name, [])
    return sizes if name == "command" else [*sizes, "--out", str(out)]


def verdict(ok: bool) -> str:
    return "**met**" if ok else "missed"


def command_rows(data: dict[str, Any]) -> list[Row]:
    results = data["results"]
    ours = results["threadneedle"]
    rate, p99 = ours["rate"], ours["p99_ms"]
    setting = (f"{data['clients']} clients, {data['contracts']} contracts, "
               f"{data['directives']:,} directives × {data['repeats']} on {data['store']}")
    rows = [
        Row("command path", f"directives over HTTP ({setting})", f"{rate:,.0f}/s", "", "",
            "≥ 2,000/s", verdict(rate >= 2000)),
        Row("command path", "p99 latency at that load", f"{p99:,.0f} ms", "", "", "≤ 50 ms",
            verdict(p99 <= 50)),
    ]
    for name in ("bare FastAPI", "one save per command", "plain eventsourcing",
                 "raw PostgreSQL inserts"):
        if name in results and results[name]["rate"]:
            base = results[name]
            rows.append(Row("command path", f"baseline: {BASELINES[name]}", "",
                            f"{base['rate']:,.0f}/s (p99 {base['p99_ms']:,.0f} ms)",
                            f"{rate / base['rate']:.2f} ×", "", ""))
    return rows


BASELINES = {
    "bare FastAPI": "a bare FastAPI endpoint parsing the same body",
    "one save per command": "Threadneedle with one `eventsourcing` save per command "
                            "(`NEEDLE_GROUP_COMMIT=0`)",
    "plain eventsourcing": "that bare endpoint + one plain `eventsourcing` save per command",
    "raw PostgreSQL inserts": "raw PostgreSQL: one single-row insert per transaction, "
                              "same clients",
}


def script_rows(area: str) -> Any:
    """Rows of a script that writes ``{"rows": [[measure, result, bar, verdict], ...]}``."""

    def build(data: dict[str, Any]) -> list[Row]:
        rows = []
        for measure, result, bar, note in data["rows"]:
            if measure.startswith("baseline"):
                rows.append(Row(area, measure, "", result, note, "", ""))
            elif note in ("meets", "MISSES"):
                rows.append(Row(area, measure, result, "", "", bar, verdict(note == "meets")))
            else:
                rows.append(Row(area, measure, result, "", note, bar, ""))
        return rows

    return build


def webhook_rows(data: dict[str, Any]) -> list[Row]:
    throughput, baseline = data.get("throughput", 0.0), data.get("baseline", 0.0)
    slowdown = data.get("slowdown", 0.0)
    ratio = f"{throughput / baseline:.2f} ×" if baseline else ""
    plain = data.get("urllib3_baseline", 0.0)
    return [
        Row("webhooks", "signed deliveries to local receivers (baseline: plain httpx POSTs)",
            f"{throughput:,.0f}/s", f"{baseline:,.0f}/s", ratio, "≥ 500/s",
            verdict(throughput >= 500)),
        Row("webhooks", "baseline: plain urllib3 POSTs, the delivery client without signing, "
            "outbox or Celery", "", f"{plain:,.0f}/s",
            f"{throughput / plain:.2f} ×" if plain else "", "", ""),
        Row("webhooks", "one endpoint answering in 10 s slows the others by",
            f"{slowdown:+.1%}", "", "", "< +10 %", verdict(slowdown < 0.10)),
    ]


STEPS: dict[str, Any] = {
    "command": command_rows,
    "projections": script_rows("projection"),
    "detection": script_rows("detection / replay"),
    "webhooks": webhook_rows,
    "pages": script_rows("dashboard"),
}


def tested_bars() -> list[Row]:
    """Bars proved by tests rather than timed: named, so the table lists every bar."""
    return [
        Row("faults", "kill -9, Redis emptied, PostgreSQL restarted, a task twice",
            "fault tests", "", "", "views equal a rebuild; nothing lost or doubled",
            "see `make test` / `make test-postgres`"),
        Row("bad input", "malformed, wrong, unknown, oversized, foreign input",
            "fuzz and bad-input tests", "", "", "a 4xx problem document, never a 5xx",
            "see `make test`"),
    ]


def machine() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return (f"commit `{commit}`, {os.cpu_count()} cores, `{platform.platform()}`, "
            f"Python {platform.python_version()}, load average {load:.1f} at the end")


def section(rows: list[Row], quick: bool, seconds: float) -> str:
    lines = ["| area | measure | median | baseline | ratio | bar | |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r.area} | {r.measure} | {r.result} | {r.baseline} | {r.ratio} | {r.bar} "
              f"| {r.met} |" for r in rows]
    return f"""## Every bar (`make bench{' BENCH_ARGS=--quick' if quick else ''}`)

{machine()}.  The whole suite took {seconds / 60:.1f} minutes.  Load comes from a
separate process over loopback; each median is over the repeats of one run, and
every baseline was measured in that same run.  Ratios are the measured figure
divided by the baseline's.  Details of each area follow in its own section.

""" + "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
