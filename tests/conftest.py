"""Shared fixtures: the stand-in servers, real SQLite files, and an environment free of proxies."""

from __future__ import annotations

import os

import pytest

from il2watch.eutils import Eutils, RateLimiter
from tests.data.records import build_world
from tests.stand_ins.eutils import EutilsStandIn

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy", "ALL_PROXY", "all_proxy")


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch):
    """slack_sdk and urllib read proxy variables (and slack_sdk ignores NO_PROXY): talk to 127.0.0.1 directly."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def ncbi_server(world):
    with EutilsStandIn(world) as server:
        yield server


@pytest.fixture
def ncbi(ncbi_server):
    """A client with its own limiter at NCBI's real rate and quick retries."""
    return Eutils(ncbi_server.base_url, email="lab@example.org", backoff=0.01, retries=4,
                  limiter=RateLimiter(3))


def subprocess_env(**settings: str) -> dict[str, str]:
    """The environment for il2watch run as a subprocess: no proxies, no inherited il2watch/Slack settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in PROXY_VARIABLES and not k.startswith(("IL2WATCH_", "SLACK_", "NCBI_"))}
    env.update(settings)
    return env
