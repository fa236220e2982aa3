"""Shared fixtures: the stand-in servers, real SQLite files, and an environment free of proxies."""

from __future__ import annotations

import pytest

from tests.data.records import build_world
from tests.stand_ins.eutils import EutilsStandIn
from tests.support import PROXY_VARIABLES, ncbi_client, settings_env


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
    return ncbi_client(ncbi_server.base_url, ncbi_attempts=4)


@pytest.fixture
def slack_server():
    from tests.stand_ins.slack_api import SlackStandIn

    with SlackStandIn() as server:
        server.add_channel("il2-papers", channel_id="C0PAPERS1")
        yield server


@pytest.fixture
def make_settings(tmp_path, ncbi_server):
    from il2watch.config import load_settings

    def make(slack_server=None, **extra: str):
        return load_settings(settings_env(tmp_path, ncbi_server, slack_server, **extra), tmp_path)

    return make
