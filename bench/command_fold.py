"""The command path's domain work per directive, timed in-process: what the group committer
spends in ``ServiceContract.issue_directive`` (validation, the hash chain and the conflict
fold) on the bodies ``bench/command_path.py`` sends, without HTTP, PostgreSQL and their noise.

    .venv/bin/python bench/command_fold.py [--directives 6000] [--runs 3]
    .venv/bin/python bench/command_fold.py --profile     # cProfile of one run

Directives go round 32 contracts (the command benchmark's terms), on 50 subjects with
values that differ, an hour a week over the whole year: they contradict each other and
their subjects' hours are shared, as in the command benchmark.  Prints the CPU time per
directive of each run.  Compare trees in alternating runs: the machine is shared.
Nothing is written to ``docs/``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from command_path import contract_terms, directive_body  # noqa: E402  (bench/, beside this)

from domain.contract import ServiceContract  # noqa: E402
from domain.directives import DirectiveFields  # noqa: E402
from domain.terms import ContractTerms  # noqa: E402

START = datetime(2008, 6, 2, tzinfo=UTC)
ADMIN = {"org": "admin", "principal": "bench"}
ISSUER = {"org": "haizhu-street", "principal": "bench"}
CONTRACTS = 32


def contract(number: int) -> ServiceContract:
    """An active contract with ``bench/command_path.py``'s terms."""
    made = ServiceContract.draft(contract_id=uuid.uuid5(uuid.NAMESPACE_URL, f"fold-{number}"),
                                 terms=ContractTerms.model_validate(contract_terms(number)),
                                 actor=ADMIN, at=START)
    made.transition("activate", actor=ADMIN, at=START)
    return made


def run(directives: int, profiler: cProfile.Profile | None = None) -> float:
    """Issue ``directives`` round the contracts; the mean CPU seconds of one."""
    contracts = [contract(number) for number in range(CONTRACTS)]
    spent = 0.0
    for n in range(directives):
        body = directive_body(n)
        began = time.process_time()
        if profiler is not None:
            profiler.enable()
        contracts[n % CONTRACTS].issue_directive(
            DirectiveFields.model_validate(body),
            directive_id=uuid.uuid5(uuid.NAMESPACE_URL, f"fold-directive-{n}"),
            issuer="haizhu-street", actor=ISSUER, at=START + timedelta(seconds=n))
        if profiler is not None:
            profiler.disable()
        spent += time.process_time() - began
    return spent / directives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directives", type=int, default=6000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile of one run")
    args = parser.parse_args()
    if args.profile:
        profiler = cProfile.Profile()
        run(args.directives, profiler)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
        return
    each = [run(args.directives) * 1e6 for _ in range(args.runs)]
    print(f"{args.directives:,} directives on {CONTRACTS} contracts: "
          + " / ".join(f"{value:.0f}" for value in each) + " µs of CPU a directive")


if __name__ == "__main__":
    main()
