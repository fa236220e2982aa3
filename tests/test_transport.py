"""The one HTTP transport, against the NCBI and Slack stand-ins over real HTTP: limits, timeouts, retries,
redirects, errors."""

from __future__ import annotations

import inspect
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from slack_sdk.errors import SlackApiError

from il2watch import pubmed, redact
from il2watch.config import Settings
from il2watch.eutils import from_settings
from il2watch.slack_client import BoundedWebClient, SlackAnswerError, make_client
from il2watch.sources.base import SourceError, read_json
from il2watch.transport import (
    MAX_WAIT,
    Host,
    RateLimiter,
    TransportError,
    host_from_settings,
    retry_after,
    shared_limiter,
)
from tests.data import records as R
from tests.stand_ins.eutils import EutilsStandIn
from tests.stand_ins.slack_api import DEFAULT_BOT_TOKEN, SlackStandIn
from tests.support import ncbi_client
from tests.test_reliability_support import CHANNEL, baseline_library, open_lab


class FakeTime:
    """A clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def host(base_url: str, **rules) -> Host:
    values = (
        dict(
            name="NCBI",
            rate=100,
            timeout=5.0,
            deadline=30.0,
            max_bytes=10_000_000,
            attempts=3,
            backoff=0.01,
            wait_budget=120.0,
        )
        | rules
    )
    return Host(base_url, limiter=RateLimiter(100), **values)


# ---------------------------------------------------------------- the rate limit


def test_the_limiter_waits_out_a_window_a_little_longer_than_a_second():
    """The margin: at 3 a second the fourth request waits 1.05 s, so jitter never puts four in NCBI's second."""
    fake = FakeTime()
    limiter = RateLimiter.per_second(3, clock=fake.clock, sleep=fake.sleep)
    assert [limiter.grant()[1] for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.grant()[1] == pytest.approx(1.05)
    assert fake.slept == [pytest.approx(1.05)]
    limiter.grant(), limiter.grant()
    fake.now += 0.5
    assert limiter.grant()[1] == pytest.approx(0.55)  # the window's first start is 1.05 s old then
    assert RateLimiter.per_second(10).period == pytest.approx(1.05)
    half = RateLimiter.per_second(0.5, clock=fake.clock, sleep=fake.sleep)
    half.grant()
    assert half.grant()[1] == pytest.approx(2.1)


def test_one_limiter_per_host_is_shared_by_every_client_of_that_host():
    assert shared_limiter("eutils.example:443", 3) is shared_limiter("eutils.example:443", 3)
    assert shared_limiter("eutils.example:443", 3) is not shared_limiter("www.ebi.example:443", 3)
    first = host_from_settings(Settings(), name="A", base_url="https://api.example.org/", rate=5)
    second = host_from_settings(Settings(), name="B", base_url="https://api.example.org/other/", rate=5)
    assert first.limiter is second.limiter


# ---------------------------------------------------------------- Retry-After


def test_retry_after_reads_seconds_and_http_dates_and_ignores_garbage():
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert retry_after("7") == 7.0 and retry_after(" 1.5 ") == 1.5 and retry_after("-3") == 0.0
    later = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert retry_after(later, now=lambda: now.timestamp()) == pytest.approx(30)
    for garbage in ("abc", "", None, "nan", "inf", "Tue, 99 Foo 2026"):
        assert retry_after(garbage) is None


def test_retry_after_is_honoured_up_to_the_cap_and_a_longer_one_fails_at_once(ncbi_server):
    fake = FakeTime()
    client = ncbi_client(ncbi_server.base_url, ncbi_backoff=5.0, sleep=fake.sleep)
    ncbi_server.inject(429, endpoint="esearch", retry_after=2)
    ncbi_server.inject(503, endpoint="esearch", retry_after=MAX_WAIT)
    assert pubmed.search(client, "mutein")
    assert fake.slept == [2.0, MAX_WAIT]
    assert client.stats.retries == 2 and client.stats.requests == 3
    ncbi_server.inject(503, endpoint="esearch", retry_after=86_400)
    with pytest.raises(TransportError) as failed:
        pubmed.search(client, "mutein")
    assert str(failed.value) == "NCBI asks il2watch to wait 86400 s (HTTP 503); asked again next poll"
    assert fake.slept == [2.0, MAX_WAIT] and failed.value.status == 503


@pytest.fixture
def openalex():
    from tests.data import citations as C
    from tests.stand_ins.openalex import OpenAlexStandIn

    with OpenAlexStandIn(C.build_literature()) as server:
        yield server


def openalex_host(openalex, fake: FakeTime, **settings) -> Host:
    """A Host for the OpenAlex stand-in, built from Settings as every source's is."""
    values = {"http_attempts": 5, "http_backoff": 0.01, **settings}
    return host_from_settings(
        Settings(**values),
        name="OpenAlex",
        base_url=openalex.base_url,
        rate=100,
        limiter=RateLimiter(100),
        sleep=fake.sleep,
    )


def test_a_source_asking_for_an_hour_fails_at_once_with_one_line_and_is_not_asked_again(openalex):
    """OpenAlex's daily budget spent: Retry-After 3600. Four waits of 120 s each would hold the poll 8 minutes."""
    from tests.stand_ins.openalex import DEFAULT_KEY

    fake = FakeTime()
    client = openalex_host(openalex, fake)
    openalex.inject(429, retry_after=3600, times=5)
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        client.get("works", {"filter": "cites:W1", "api_key": DEFAULT_KEY}, what="works")
    assert time.monotonic() - started < 0.5
    assert str(failed.value) == "OpenAlex asks il2watch to wait 3600 s (HTTP 429); asked again next poll"
    assert failed.value.kind == "throttled" and failed.value.status == 429
    assert fake.slept == [] and len(openalex.requests) == 1 and client.stats.retries == 0


def test_a_source_asking_for_a_second_is_waited_out_and_answers(openalex):
    from tests.stand_ins.openalex import DEFAULT_KEY

    fake = FakeTime()
    client = openalex_host(openalex, fake)
    openalex.inject(429, retry_after=1)
    answer = client.get("works", {"filter": "cites:W1", "api_key": DEFAULT_KEY}, what="works")
    assert answer.status == 200 and "results" in read_json(answer, "OpenAlex")
    assert fake.slept == [1.0] and [r.status for r in openalex.requests] == [429, 200]


def test_one_request_waits_at_most_its_retry_budget_in_all(openalex):
    """IL2WATCH_RETRY_BUDGET bounds the sum of the waits, Retry-After's and the backoff's alike."""
    from tests.stand_ins.openalex import DEFAULT_KEY

    fake = FakeTime()
    client = openalex_host(openalex, fake, retry_budget=120.0)
    openalex.inject(429, retry_after=50, times=3)
    with pytest.raises(TransportError) as failed:
        client.get("works", {"api_key": DEFAULT_KEY}, what="works")
    assert fake.slept == [50.0, 50.0] and len(openalex.requests) == 3
    assert str(failed.value) == (
        "OpenAlex asks il2watch to wait 50 s (HTTP 429) after 100 s of waiting for this request "
        "(IL2WATCH_RETRY_BUDGET is 120 s); asked again next poll"
    )
    fake, openalex_log = FakeTime(), len(openalex.requests)
    client = openalex_host(openalex, fake, retry_budget=25.0, http_backoff=10.0)
    openalex.inject(503, times=5)
    with pytest.raises(TransportError) as failed:
        client.get("works", {"api_key": DEFAULT_KEY}, what="works")
    assert sum(fake.slept) == pytest.approx(25.0) and len(fake.slept) == 2
    assert len(openalex.requests) - openalex_log == 3
    assert str(failed.value) == (
        "OpenAlex works failed after 3 attempts (HTTP 503); it waited 25 s between them, all IL2WATCH_RETRY_BUDGET "
        "allows"
    )


# ---------------------------------------------------------------- what cannot get better by waiting


def test_a_name_that_does_not_resolve_fails_at_once_with_one_line():
    fake = FakeTime()
    client = host("http://eutils.invalid/entrez/eutils/", sleep=fake.sleep)
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        client.get("einfo.fcgi", what="einfo")
    assert time.monotonic() - started < 2 and fake.slept == [] and client.stats.requests == 1
    assert failed.value.kind == "unreachable"
    assert str(failed.value) == "NCBI cannot be reached: the name eutils.invalid does not resolve (DNS)"


def test_an_unreachable_host_names_the_proxy_variables_that_are_set(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://user:hunter22@proxy.invalid:3128")
    monkeypatch.setenv("ALL_PROXY", "http://proxy2.invalid:1080")
    with pytest.raises(TransportError) as failed:
        host("http://eutils.invalid/").get("einfo.fcgi")
    message = str(failed.value)
    assert "HTTP_PROXY=http://[redacted]@proxy.invalid:3128" in message and "ALL_PROXY=" in message
    assert "hunter22" not in message


def test_a_refused_connection_fails_at_once():
    port = free_port()
    fake = FakeTime()
    client = ncbi_client(f"http://127.0.0.1:{port}/entrez/eutils/", ncbi_attempts=5, sleep=fake.sleep)
    with pytest.raises(TransportError) as failed:
        pubmed.database_info(client)
    assert fake.slept == [] and client.stats.requests == 1
    assert str(failed.value) == (
        f"NCBI cannot be reached: 127.0.0.1:{port} refused the connection; check the network, or IL2WATCH_EUTILS_URL"
    )


def test_a_status_not_accepted_fails_with_a_short_excerpt_and_one_accepted_is_an_answer(ncbi_server):
    client = host(ncbi_server.base_url)
    with pytest.raises(TransportError) as failed:
        client.get("nothing.fcgi", [("db", "pubmed")])
    assert str(failed.value) == "NCBI answered HTTP 404 to nothing.fcgi: 404 Not Found"
    assert failed.value.status == 404 and client.stats.requests == 1
    answer = client.get("nothing.fcgi", [("db", "pubmed")], accept={404})
    assert answer.status == 404 and b"Not Found" in answer.body
    assert answer.url == f"{ncbi_server.base_url}nothing.fcgi?db=pubmed"


def test_an_api_key_ncbi_echoes_in_a_400_never_reaches_the_message_or_the_url(world):
    redact.restore(frozenset())  # only what the transport itself knows protects the key here
    with EutilsStandIn(world) as server:
        server.reject_api_key("sEcReT-KeY-0042")
        client = ncbi_client(server.base_url, ncbi_api_key="sEcReT-KeY-0042")
        with pytest.raises(TransportError) as failed:
            pubmed.search(client, "mutein")
        assert server.requests[-1].params["api_key"] == ["sEcReT-KeY-0042"]
        message = str(failed.value)
        assert message.startswith("NCBI answered HTTP 400 to esearch: ") and "API key invalid" in message
        assert "sEcReT" not in message and "\n" not in message
        good = ncbi_client(server.base_url, ncbi_api_key="good-key")
        answer = good.host.get("einfo.fcgi", [("db", "pubmed"), ("api_key", "good-key")])
        assert "good-key" not in answer.url and "api_key=[redacted]" in answer.url


def test_credentials_in_the_base_url_are_sent_as_basic_auth_and_never_shown(ncbi_server):
    base = ncbi_server.base_url.replace("http://", "http://mirror-user:pa55word@")
    client = host(base)
    answer = client.get("einfo.fcgi", [("db", "pubmed")])
    assert answer.status == 200 and "pa55word" not in answer.url and "mirror-user" not in answer.url
    assert client.headers["Authorization"].startswith("Basic ")
    port = free_port()
    with pytest.raises(TransportError) as failed:
        host(f"http://mirror-user:pa55word@127.0.0.1:{port}/").get("einfo.fcgi")
    assert "pa55word" not in str(failed.value) and "mirror-user" not in str(failed.value)


# ---------------------------------------------------------------- redirects


def test_a_redirect_within_the_host_is_followed_with_its_credentials(ncbi_server):
    """A mirror that moved its path (301 for a GET, 307 for a POST, which keeps its form) is followed on the
    same host, Basic authentication included; each hop counts against the host's rate."""
    base = ncbi_server.base_url.replace("http://", "http://mirror-user:pa55word@")
    client = host(base)
    moved = ncbi_server.base_url.replace("/entrez/eutils/", "/moved/eutils/")
    ncbi_server.inject(301, endpoint="einfo", location=moved)
    answer = client.get("einfo.fcgi", [("db", "pubmed"), ("api_key", "mirror-key-0042")])
    assert answer.status == 200 and b"<DbName>pubmed</DbName>" in answer.body
    assert answer.url == f"{moved}einfo.fcgi?db=pubmed&api_key=[redacted]"
    ncbi_server.inject(307, endpoint="efetch", location=moved)
    fetched = client.post("efetch.fcgi", [("db", "pubmed"), ("id", R.REVIEW_PMID), ("retmode", "xml")])
    assert f'<PMID Version="1">{R.REVIEW_PMID}</PMID>'.encode() in fetched.body
    seen = [(r.endpoint, r.method, r.status, r.authorization.split()[0]) for r in ncbi_server.requests]
    assert seen == [
        ("einfo", "GET", 301, "Basic"),
        ("einfo", "GET", 200, "Basic"),
        ("efetch", "POST", 307, "Basic"),
        ("efetch", "POST", 200, "Basic"),
    ]
    assert client.stats.requests == 4


def test_a_redirect_to_another_host_is_refused_and_no_credential_or_key_reaches_it(world):
    """D3/D4: a mirror at A answering 302 to B (which would echo the query, API key and all): nothing at all
    is sent to B, not the Basic credentials, not the key; the one line names both hosts and no secret."""
    with EutilsStandIn(world) as mirror, EutilsStandIn(world) as other:
        base = mirror.base_url.replace("http://", "http://mirroruser:s3cretpw@")
        client = ncbi_client(base, ncbi_api_key="sEcReT-KeY-0042", ncbi_attempts=3)
        elsewhere = other.base_url.replace("127.0.0.1", "localhost")
        mirror.inject(302, endpoint="esearch", location=elsewhere)
        with pytest.raises(TransportError) as failed:
            pubmed.search(client, "mutein")
        here, there = mirror.base_url.split("/entrez")[0], elsewhere.split("/entrez")[0]
        assert str(failed.value) == (
            f"NCBI redirected esearch from {here} to {there} (HTTP 302); il2watch follows redirects within "
            f"{here} only, so that its requests and credentials reach no other host: if {there} is meant, set "
            f"the base URL to it"
        )
        assert failed.value.kind == "redirect" and failed.value.status == 302
        assert other.requests == []
        assert [(r.endpoint, r.status) for r in mirror.requests] == [("esearch", 302)]  # not retried
        for secret in ("s3cretpw", "mirroruser", "sEcReT-KeY-0042"):
            assert secret not in str(failed.value)


def test_a_redirected_post_that_would_become_a_get_and_endless_redirects_fail_with_one_line(world):
    with EutilsStandIn(world, enforce_rate_limit=False) as ncbi_server:  # seven requests in a moment
        client = host(ncbi_server.base_url)
        moved = ncbi_server.base_url.replace("/entrez/eutils/", "/moved/eutils/")
        ncbi_server.inject(302, endpoint="efetch", location=moved)
        with pytest.raises(TransportError) as failed:
            client.post("efetch.fcgi", [("db", "pubmed"), ("id", R.REVIEW_PMID)], what="efetch")
        assert str(failed.value) == (
            f"NCBI answered the POST of efetch with HTTP 302, pointing to {moved}efetch.fcgi; il2watch does not send "
            f"a POST again as a GET: set the base URL to the new address"
        )
        ncbi_server.inject(302, endpoint="einfo", times=10, location=ncbi_server.base_url)
        with pytest.raises(TransportError) as failed:
            client.get("einfo.fcgi", [("db", "pubmed")], what="einfo")
        assert str(failed.value) == (
            f"NCBI redirected einfo more than 5 times (last to {ncbi_server.base_url}einfo.fcgi?db=pubmed); set the "
            f"base URL to where the answer is"
        )
        assert len([r for r in ncbi_server.requests if r.endpoint == "einfo"]) == 6


# ---------------------------------------------------------------- time and size


def test_a_silent_server_hits_the_read_timeout_and_says_so(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, ncbi_timeout=0.2, ncbi_attempts=2)
    ncbi_server.inject("slow", endpoint="einfo", times=2, delay=1.0)
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        pubmed.database_info(client)
    assert time.monotonic() - started < 1.5
    assert str(failed.value) == "NCBI einfo failed after 2 attempts (no answer for 0.2 s: read timeout)"
    assert failed.value.kind == "timeout"


def test_an_answer_dripped_slowly_fails_at_the_deadline_without_a_retry(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, ncbi_timeout=5.0, request_deadline=1.0)
    ncbi_server.inject("drip", endpoint="efetch", delay=0.05)  # 16 bytes every 50 ms: the read timeout never fires
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        pubmed.fetch_papers(client, [R.REVIEW_PMID])
    assert 0.9 < time.monotonic() - started < 2.5
    assert str(failed.value) == (
        "NCBI took more than 1 s to answer efetch: its body was still arriving (IL2WATCH_REQUEST_DEADLINE)"
    )
    assert failed.value.kind == "deadline" and client.stats.requests == 1


def test_a_status_line_and_headers_dripped_slowly_fail_at_the_deadline_too(ncbi_server):
    """The deadline bounds the whole answer: 14 header lines 0.3 s apart (4.2 s) are cut at 1 s, and the line
    says the headers were still arriving; the read timeout (5 s) never fires on its own."""
    client = ncbi_client(ncbi_server.base_url, ncbi_timeout=5.0, request_deadline=1.0)
    ncbi_server.inject("drip_headers", endpoint="einfo", delay=0.3)
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        pubmed.database_info(client)
    took = time.monotonic() - started
    assert 0.9 < took < 2.0, took
    assert str(failed.value) == (
        "NCBI took more than 1 s to answer einfo: its status line and headers were still arriving "
        "(IL2WATCH_REQUEST_DEADLINE)"
    )
    assert failed.value.kind == "deadline" and client.stats.requests == 1
    ncbi_server.inject("drip_headers", endpoint="einfo", delay=0.01)  # the same answer within the deadline
    assert pubmed.database_info(client)


def test_the_deadline_counts_from_when_the_request_may_leave_not_from_the_queue(ncbi_server):
    """Waiting for the host's rate limit is not the answer's time: two requests queued behind a limiter of
    one a second both get their whole deadline (0.6 s), though the second waits 1 s before it leaves."""
    settings = Settings(eutils_url=ncbi_server.base_url, ncbi_email="lab@example.org", request_deadline=0.6)
    client = from_settings(settings, limiter=RateLimiter(1, 1.0))
    pubmed.database_info(client)
    started = time.monotonic()
    assert pubmed.database_info(client)
    assert time.monotonic() - started > 0.6


def test_an_answer_larger_than_the_cap_fails_that_request_clearly(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, max_answer_mb=0.002)
    assert pubmed.database_info(client)  # a small answer passes
    with pytest.raises(TransportError) as failed:
        pubmed.fetch_papers(client, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID])
    assert str(failed.value) == (
        "NCBI answered more than 0.002 MB to efetch; il2watch reads at most that much of one answer "
        "(IL2WATCH_MAX_ANSWER_MB)"
    )
    assert failed.value.kind == "too-large"


def test_an_answer_without_content_length_is_capped_as_it_is_read(ncbi_server):
    client = ncbi_client(ncbi_server.base_url, max_answer_mb=0.001)
    ncbi_server.inject("truncate", endpoint="efetch")  # sent until the connection closes, no Content-Length
    with pytest.raises(TransportError, match="answered more than 0.001 MB to efetch"):
        pubmed.fetch_papers(client, [R.REVIEW_PMID, R.TREG_MUTEIN_PMID, R.MARKUP_PMID])


def test_get_and_post_count_by_path(ncbi_server):
    client = host(ncbi_server.base_url)
    client.get("einfo.fcgi", {"db": "pubmed"})
    client.post("efetch.fcgi", [("db", "pubmed"), ("id", R.REVIEW_PMID), ("retmode", "xml")])
    assert client.stats.by_path == {"einfo.fcgi": 1, "efetch.fcgi": 1}
    assert [r.method for r in ncbi_server.requests] == ["GET", "POST"]


# ---------------------------------------------------------------- one attempt, briefly (what doctor asks for)


def test_settings_for_one_brief_attempt_ask_once_within_their_timeout(ncbi_server):
    """``il2watch doctor`` checks with ncbi_attempts=1 and short timeouts: the transport asks exactly once."""
    fake = FakeTime()
    settings = Settings(eutils_url=ncbi_server.base_url, ncbi_attempts=1, ncbi_timeout=0.3, request_deadline=0.6)
    client = from_settings(settings, limiter=RateLimiter(3), sleep=fake.sleep)
    ncbi_server.inject(503, endpoint="einfo")
    with pytest.raises(TransportError) as failed:
        pubmed.database_info(client)
    assert str(failed.value) == "NCBI einfo failed (HTTP 503)" and fake.slept == []
    assert [(r.endpoint, r.status) for r in ncbi_server.requests] == [("einfo", 503)]
    ncbi_server.inject("slow", endpoint="einfo", delay=1.0)
    started = time.monotonic()
    with pytest.raises(TransportError, match=r"^NCBI einfo failed \(no answer for 0.3 s: read timeout\)$"):
        pubmed.database_info(client)
    assert time.monotonic() - started < 0.9


def test_an_answer_reads_as_json_or_says_it_is_not(ncbi_server):
    client = host(ncbi_server.base_url)
    ncbi_server.inject(429, endpoint="einfo")
    answer = client.get("einfo.fcgi", {"db": "pubmed"}, accept={429})
    assert answer.status == 429 and read_json(answer, "NCBI einfo")["error"] == "API rate limit exceeded"
    page = client.get("einfo.fcgi", {"db": "pubmed"})
    with pytest.raises(SourceError, match=r"^NCBI einfo: the answer is an HTML or XML page, not JSON"):
        read_json(page, "NCBI einfo")
    assert b"DbInfo" in page.body


def test_a_request_that_leaves_late_is_counted_from_when_it_left():
    now = [0.0]
    limiter = RateLimiter(3, clock=lambda: now[0], sleep=lambda seconds: now.__setitem__(0, now[0] + seconds))
    first, _ = limiter.grant()
    limiter.grant(), limiter.grant()
    now[0] = 0.5
    limiter.sent(first)  # the first request's connection was only made half a second later
    assert limiter.grant()[1] == pytest.approx(0.05 + 0.5)  # the fourth waits for the first's real departure + 1.05


# ---------------------------------------------------------------- Slack keeps the same limits


def slack_client_for(slack: SlackStandIn, **settings) -> BoundedWebClient:
    values = dict(slack_api_url=slack.base_url, slack_bot_token=DEFAULT_BOT_TOKEN, slack_timeout=1.0) | settings
    client = make_client(Settings(**values))
    assert isinstance(client, BoundedWebClient)
    return client


def test_the_slack_sdk_methods_the_bounded_client_replaces_are_the_ones_slack_sdk_still_calls():
    """BoundedWebClient overrides two undocumented slack_sdk methods (written against slack_sdk 3.48.0, the
    same shapes from 3.28 on). If slack_sdk renames, reshapes or stops calling them, Slack would silently
    lose its deadline and cap: this fails first, loudly."""
    from slack_sdk import WebClient
    from slack_sdk.version import __version__
    from slack_sdk.web.base_client import BaseClient

    changed = f"slack_sdk {__version__} changed what il2watch.slack_client.BoundedWebClient overrides: check it"
    internal = inspect.signature(BaseClient._perform_urllib_http_request_internal)
    assert list(internal.parameters) == ["self", "url", "req"], changed
    assert "self._perform_urllib_http_request_internal(url, req)" in inspect.getsource(
        BaseClient._perform_urllib_http_request
    ), changed
    upload = inspect.signature(BaseClient._upload_file)
    assert list(upload.parameters) == ["self", "url", "data", "logger", "timeout", "proxy", "ssl"], changed
    assert all(p.kind is p.KEYWORD_ONLY for name, p in upload.parameters.items() if name != "self"), changed
    assert "self._upload_file(" in inspect.getsource(WebClient.files_upload_v2), changed
    assert (
        BoundedWebClient._perform_urllib_http_request_internal is not BaseClient._perform_urllib_http_request_internal
    )


def test_a_slack_answer_dripped_slowly_is_cut_at_the_deadline(slack_server):
    """D2 for Slack: auth.test's answer 8 bytes every 0.1 s (about 5 s in all) never trips the 1 s read
    timeout; IL2WATCH_REQUEST_DEADLINE (1 s) ends it with one line, an OSError as a lost answer is."""
    client = slack_client_for(slack_server, request_deadline=1.0)
    assert client.auth_test()["ok"]
    slack_server.inject("drip", method="auth.test", delay=0.1)
    started = time.monotonic()
    with pytest.raises(SlackAnswerError) as failed:
        client.auth_test()
    took = time.monotonic() - started
    assert 0.9 < took < 2.0, took
    assert str(failed.value) == (
        "Slack took more than 1 s to answer auth.test: its status line and headers were still arriving "
        "(IL2WATCH_REQUEST_DEADLINE)"
    )
    assert isinstance(failed.value, OSError)
    slack_server.inject("drip", method="auth.test", delay=0.001)  # dripped, but within the deadline: read whole
    assert client.auth_test()["user_id"] == "U0IL2BOT"


def test_a_slack_answer_over_the_cap_fails_that_call_with_one_line(slack_server):
    client = slack_client_for(slack_server, max_answer_mb=0.01)
    slack_server.inject("oversize", method="conversations.history", size=20_000)
    with pytest.raises(SlackAnswerError) as failed:
        client.conversations_history(channel="C0GENERAL")
    assert str(failed.value) == (
        "Slack answered more than 0.01 MB to conversations.history; il2watch reads at most that much of one "
        "answer (IL2WATCH_MAX_ANSWER_MB)"
    )
    slack_server.inject("oversize", method="conversations.history", size=5_000)  # under the cap: an answer
    assert client.conversations_history(channel="C0GENERAL")["ok"]


def test_slack_429_and_error_codes_still_reach_slack_sdk_through_the_bounded_client(slack_server):
    """What slack_sdk does with a status that is not 2xx (its retry handlers, SlackApiError) is unchanged."""
    client = make_client(
        Settings(slack_api_url=slack_server.base_url, slack_bot_token=DEFAULT_BOT_TOKEN, slack_backoff=0.01)
    )
    slack_server.inject(429, method="auth.test", retry_after="0.05")
    assert client.auth_test()["ok"]
    assert [c.status for c in slack_server.calls("auth.test")] == [429, 200]
    slack_server.inject(503, method="auth.test")
    with pytest.raises(SlackApiError) as refused:
        client.auth_test()
    assert refused.value.response.status_code == 503


class _Redirector(BaseHTTPRequestHandler):
    """Answers every request with a 302 to ``target`` plus the request's path (a moved or hostile proxy)."""

    target = ""

    def do_POST(self) -> None:  # noqa: N802
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_slack_redirect_to_another_host_never_carries_the_bot_token_there(slack_server):
    """D3 for Slack: a base URL whose server redirects to another host (the stand-in, on another port). urllib
    would follow with the Authorization header; il2watch refuses, naming both hosts, and that host sees nothing."""
    handler = type("Redirector", (_Redirector,), {"target": slack_server.url})
    redirector = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=redirector.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    try:
        here = f"http://127.0.0.1:{redirector.server_address[1]}"
        client = slack_client_for(slack_server, slack_api_url=f"{here}/api/")
        with pytest.raises(SlackAnswerError) as failed:
            client.auth_test()
        assert str(failed.value) == (
            f"Slack redirected auth.test from {here} to {slack_server.url} (HTTP 302); il2watch follows redirects "
            f"within {here} only, so that its requests and credentials reach no other host: if "
            f"{slack_server.url} is meant, set the base URL to it"
        )
        assert slack_server.calls() == []
    finally:
        redirector.shutdown()
        redirector.server_close()


def test_a_post_whose_answer_slack_drips_is_cut_at_the_deadline_and_not_doubled(tmp_path):
    """End to end: Slack keeps the post and drips its answer (about 20 s); the poll gives up on it at the
    deadline, finds the post in the channel by its key, and posts nothing twice."""
    (tmp_path / "baseline").mkdir(), (tmp_path / "lab").mkdir()
    with (
        baseline_library(tmp_path / "baseline") as baseline,
        open_lab(tmp_path / "lab", IL2WATCH_SLACK_TIMEOUT="1", IL2WATCH_REQUEST_DEADLINE="1") as lab,
    ):
        lab.start_from(baseline)
        lab.arrive("41000001")
        lab.slack.inject("drip", method="chat.postMessage", delay=0.1)
        started = time.monotonic()
        report = lab.poll()
        took = time.monotonic() - started
        assert took < 6, took
        assert report.delivery.posted == 1 and lab.posted()["41000001"] == 1
        [dripped] = lab.slack.calls("chat.postMessage")  # posted once: Slack took it, only its answer was lost
        assert dripped.status == 200 and dripped.params["channel"] == CHANNEL
        assert len(lab.slack.calls("conversations.history")) == 2  # before posting, and after the lost answer
