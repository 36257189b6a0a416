"""docker-compose.yml: valid Compose, Redis behind a password, several API processes and
workers, one beat (issues 11 and 15).

The file is interpolated as Compose does (``${VAR}``, ``${VAR:-default}``,
``${VAR:?error}``, ``$$``), merged (YAML ``<<``) and checked against the Compose
Specification (the ``compose-spec`` package).  Where the ``docker compose``
plugin is installed, ``docker compose config`` is run too (it needs no engine).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from compose_spec import PyCompose

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"
ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "NEEDLE_ADMIN_KEY": "a" * 40,
    "NEEDLE_CHAIN_KEY": "c" * 40,
    "NEEDLE_REDIS_PASSWORD": "0123456789abcdef" * 4,
    "NEEDLE_WEBHOOK_SECRET_KEY": "w" * 40,
}
VARIABLE = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\})")
NEEDLE_SERVICES = ("api", "worker", "webhooks", "beat")


class Unset(Exception):
    pass


def interpolate(text: str, env: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, operator, argument = match.groups()
        given = env.get(name)
        present = bool(given) if operator and operator.startswith(":") else given is not None
        if operator in (":-", "-"):
            return given if present and given is not None else argument
        if operator in (":?", "?"):
            if not present or given is None:
                raise Unset(f"{name}: {argument}")
            return given
        return given or ""

    return VARIABLE.sub(value, text)


def compose(env: dict[str, str]) -> dict[str, Any]:
    """The file as Compose reads it, validated against the Compose Specification."""
    config = yaml.safe_load(interpolate(COMPOSE.read_text(), env))
    PyCompose.from_json(json.dumps(config)).validate()  # raises ValueError naming the fault
    return dict(config)


def test_the_file_is_valid_compose() -> None:
    config = compose(ENV)
    assert set(NEEDLE_SERVICES) | {"postgres", "redis"} <= set(config["services"])


@pytest.mark.parametrize("variable", ["NEEDLE_REDIS_PASSWORD", "NEEDLE_CHAIN_KEY",
                                      "NEEDLE_ADMIN_KEY", "POSTGRES_PASSWORD"])
def test_a_missing_secret_is_refused_not_defaulted(variable: str) -> None:
    with pytest.raises(Unset, match=variable):
        compose({k: v for k, v in ENV.items() if k != variable})


def test_redis_requires_the_password_every_service_uses() -> None:
    services = compose(ENV)["services"]
    redis = services["redis"]
    assert "--requirepass" in " ".join(redis["command"])
    assert redis["environment"]["REDISCLI_AUTH"] == ENV["NEEDLE_REDIS_PASSWORD"]  # healthcheck
    for name in NEEDLE_SERVICES:
        url = urlsplit(services[name]["environment"]["NEEDLE_REDIS_URL"])
        assert (url.hostname, url.password) == ("redis", ENV["NEEDLE_REDIS_PASSWORD"]), name
        assert services[name]["environment"]["NEEDLE_CHAIN_KEY"] == ENV["NEEDLE_CHAIN_KEY"]


def test_several_api_processes_and_workers_and_one_beat() -> None:
    services = compose(ENV | {"NEEDLE_API_PROCESSES": "6", "NEEDLE_WORKERS": "3"})["services"]
    api = services["api"]["command"]
    assert api[api.index("--workers") + 1] == "6"
    # and the API's settings know how many there are (each holds back its share of a limit)
    assert str(services["api"]["environment"]["NEEDLE_API_PROCESSES"]) == "6"
    assert api[api.index("--http") + 1] == "api.server:GuardedProtocol"
    assert services["worker"]["deploy"]["replicas"] == 3
    assert services["webhooks"]["deploy"]["replicas"] == 3
    assert services["beat"]["deploy"]["replicas"] == 1
    defaults = compose(ENV)["services"]
    assert defaults["worker"]["deploy"]["replicas"] == 2
    assert defaults["api"]["command"][defaults["api"]["command"].index("--workers") + 1] == "1"


def docker_compose() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not docker_compose(), reason="the docker compose plugin is not installed")
def test_docker_compose_config_accepts_it() -> None:
    run = ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"]
    assert subprocess.run(run, env=ENV | {"PATH": "/usr/bin:/bin:/usr/local/bin"},
                          capture_output=True, check=False).returncode == 0
    missing = {k: v for k, v in ENV.items() if k != "NEEDLE_REDIS_PASSWORD"}
    assert subprocess.run(run, env=missing | {"PATH": "/usr/bin:/bin:/usr/local/bin"},
                          capture_output=True, check=False).returncode != 0
