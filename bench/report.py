"""Where the benchmark scripts write: one marked section each of ``docs/benchmarks.md``.

Each script owns the text between ``<!-- bench:<name>:start -->`` and
``<!-- bench:<name>:end -->`` and replaces only that, so the scripts (and the
hand-written notes between their sections) never overwrite each other.
"""

from __future__ import annotations

from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    return f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"


def write_section(path: Path, name: str, text: str, *, first: bool = False) -> None:
    """Replace section ``name``; a new one goes at the end, or under the title if ``first``."""
    start, end = markers(name)
    current = path.read_text("utf-8") if path.exists() else "# Benchmarks\n"
    block = f"{start}\n{text.strip()}\n{end}"
    if start in current and end in current:
        head, _, rest = current.partition(start)
        current = head + block + rest.partition(end)[2]
    elif first:
        title, _, rest = current.partition("\n")
        current = f"{title}\n\n{block}\n{rest}"
    else:
        current = f"{current.rstrip()}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(current, "utf-8")
