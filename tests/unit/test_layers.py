"""The import layers: ``domain/`` -> ``workflows/`` -> ``api/``, ``workers/``, ``cli/``.

``lint-imports`` checks the contracts in ``pyproject.toml`` (``[tool.importlinter]``):
no package imports one of a layer above it (``workflows/`` never imports ``api/``,
``workers/`` or ``cli/``; ``domain/`` none of them), and the domain's modules import
each other without a cycle.  What the domain may import from outside the project
(the standard library, ``eventsourcing`` and ``pydantic``, nothing else) is checked
here with grimp, the graph import-linter builds: its contracts forbid named modules,
they cannot allow only some.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
DOMAIN_MAY_IMPORT = frozenset({"eventsourcing", "pydantic"})


def outside_imports(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """Each domain module's imports of anything but the domain, the standard library,
    eventsourcing and pydantic (by top-level name)."""
    found: dict[str, set[str]] = {}
    for module in sorted(graph.find_descendants("domain")):
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top != "domain" and top not in sys.stdlib_module_names \
                    and top not in DOMAIN_MAY_IMPORT:
                found.setdefault(module, set()).add(imported)
    return found


def domain_graph() -> grimp.ImportGraph:
    return grimp.build_graph("domain", include_external_packages=True, cache_dir=None)


def test_the_layer_contracts_hold() -> None:
    # Given the contracts in pyproject.toml, when lint-imports checks the packages
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, check=False)
    # then every contract is kept
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


def test_the_domain_imports_only_the_standard_library_eventsourcing_and_pydantic() -> None:
    assert outside_imports(domain_graph()) == {}


def test_the_check_sees_an_import_from_outside() -> None:
    # Given the domain's graph with two imports it must not have
    graph = domain_graph()
    graph.add_import(importer="domain.errors", imported="fastapi")
    graph.add_import(importer="domain.windows", imported="workflows.settings")
    # then the check names both
    assert outside_imports(graph) == {"domain.errors": {"fastapi"},
                                      "domain.windows": {"workflows.settings"}}
