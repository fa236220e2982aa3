"""A stand-in for NCBI E-utilities: a real HTTP server on 127.0.0.1 answering from a ``PubMedWorld``.

Every answer is built from the request's parameters and the world as it is at that moment,
in the XML shapes (and DOCTYPE lines) NCBI sends, so ``Bio.Entrez.read`` parses them as it
parses NCBI's. Endpoints are recognised by file name under any prefix
(``/entrez/eutils/elink.fcgi``); GET query strings and form-encoded POST bodies are merged.

Choices where NCBI's behaviour is not recorded in ../../../shared/ncbi-fixtures:

- ELink, an id PubMed does not have (or one with no links): a LinkSet with its IdList and no
  LinkSetDb. That is what NCBI answers for a well-formed but unknown PMID, so a client cannot
  tell "unknown" from "no links" here either; a non-numeric id gets an ERROR in its LinkSet.
- ELink ``cmd=neighbor_score`` without ``linkname`` answers every link set, with Score in the
  similar-article sets only. A date limit or ``term`` lists linked ids newest first.
- Date limits (ELink and ESearch) read ``datetype`` as NCBI does, defaulting to pdat; edat, crdt
  and mdat all mean the record's entry date here. ``mindate`` or ``maxdate`` alone is an open range.
- ESummary of an unknown id: ``<ERROR>UID=…: cannot get document summary</ERROR>`` in its place
  (``Entrez.read`` raises RuntimeError unless ``ignore_errors=True``). Only version 1.0 is served.
- EFetch (and ESummary) through WebEnv default to ``retmax=20``; send ``retmax`` explicitly.
- EFetch's error document is NCBI's ``eFetchResult`` (not ``PubmedArticleSet``); Biopython ships
  no DTD for it, so ``Entrez.read`` raises RuntimeError (after trying to download the DTD).
- ESearch terms may name id lists kept on the history server as ``#N`` (with the request's ``WebEnv``),
  and use PubMed's Comment Correction Type filters (``hasretractionin``, ``haserratumin``,
  ``hasretractedandrepublishedin``, …), which select records by their CommentsCorrections RefType.
- Only XML is served: ``retmode=json`` or ``retmode=text`` gets HTTP 400.
- Rate limiting counts the requests served in the last ``rate_window`` seconds per API key (or
  per client address without one); refused requests do not count. NCBI's 429 body:
  ``{"error":"API rate limit exceeded","api-key":"<key or address>","count":"4","limit":"3"}``.
- A rejected API key (``reject_api_key``): HTTP 400 with NCBI's JSON body, which echoes the key:
  ``{"error":"API key invalid","api-key":"<key>","type":"invalid","status":"unknown"}``.

Run ``python -m tests.stand_ins.eutils --port 8000`` to serve the world of tests/data/records.py.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
import secrets
import signal
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape as xml_escape

from tests.stand_ins.pubmed_world import (
    DateLimit,
    LinkSetAnswer,
    PubMedWorld,
    einfo_list_xml,
    einfo_pubmed_xml,
    elink_xml,
    epost_xml,
    esearch_xml,
    esummary_missing,
    esummary_xml,
    pubmed_articles_xml,
    root_error_xml,
)

ENDPOINTS = {
    "elink.fcgi": "elink",
    "esearch.fcgi": "esearch",
    "efetch.fcgi": "efetch",
    "epost.fcgi": "epost",
    "esummary.fcgi": "esummary",
    "einfo.fcgi": "einfo",
}
NAMED_FAULTS = (
    "truncate",
    "html",
    "slow",
    "reset",
    "empty",
    "error",
    "drip",
    "drip_headers",
    "count",
    "stowaway",
    "ids",
)
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
XML = "text/xml; charset=UTF-8"
HTML = "text/html; charset=UTF-8"
ESEARCH_RETSTART_CAP = 9998
_RETSTART_MESSAGE = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, ESearch can only "
    "retrieve the first 9,999 records matching the query. To obtain more than 9,999 PubMed records, consider "
    "using EDirect that contains additional logic to batch PubMed search results automatically so that an "
    "arbitrary number can be retrieved. For details see https://www.ncbi.nlm.nih.gov/books/NBK25499/"
)
_DEFAULT_ERRORS = {
    "elink": "Error occurred: Unable to obtain link information",
    "esearch": "Search Backend failed: temporarily unavailable",
    "efetch": "Cannot retrieve history data. Backend temporarily unavailable",
    "epost": "Error occurred: UID list could not be stored",
    "esummary": "Error occurred: document summaries temporarily unavailable",
    "einfo": "Error occurred: database information temporarily unavailable",
}


def _html_page(status: int, title: str) -> bytes:
    return (
        f"<!DOCTYPE html>\n<html><head><title>{status} {title}</title></head>\n"
        f"<body><h1>{title}</h1><p>The server encountered a problem and could not complete your request.</p>"
        f"<p>NCBI E-utilities stand-in</p></body></html>\n"
    ).encode()


# ---------------------------------------------------------------------------- request log


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it."""

    time: float  # the server clock (time.monotonic unless replaced) when the request arrived
    endpoint: str  # "elink", "esearch", …, or the unrecognised file name
    method: str  # "GET" or "POST"
    params: dict[str, list[str]]  # query string and form body merged; tool, email, api_key kept
    status: int  # HTTP status sent; 0 when the connection was reset without an answer
    fault: str = ""  # the injected fault that shaped the answer ("500", "slow", …), or "rate-limit"
    url_length: int = 0
    authorization: str = ""  # the Authorization header as sent (a mirror's Basic credentials), or ""


def max_requests_in_any_second(entries: Iterable[LoggedRequest], window: float = 1.0) -> int:
    """The most entries whose times fall within any ``window``-second span (a sliding window)."""
    times = sorted(e.time for e in entries)
    best = 0
    first = 0
    for last, moment in enumerate(times):
        while moment - times[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


# ---------------------------------------------------------------------------- faults and history


@dataclass
class _Fault:
    kind: int | str
    endpoint: str | None
    remaining: int
    retry_after: float | None = None
    delay: float = 1.0
    message: str = ""
    record: object = None  # "stowaway": the Record added to the answer
    location: str = ""  # a redirect: the base URL the request is sent on to
    ids: tuple[str, ...] = ()  # "ids": the raw ids written into the answer's IdList or Link elements

    @property
    def name(self) -> str:
        return str(self.kind)


class _History:
    """WebEnv sessions: each holds numbered id lists (query keys from 1)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, list[list[str]]] = {}

    def store(self, ids: Sequence[str], webenv: str = "") -> tuple[str, int]:
        with self._lock:
            if webenv not in self._sessions:
                webenv = "MCID_" + secrets.token_hex(12)
                self._sessions[webenv] = []
            self._sessions[webenv].append(list(ids))
            return webenv, len(self._sessions[webenv])

    def lists(self, webenv: str) -> dict[str, list[str]]:
        """Every id list of one session by its query key ("1", "2", …); empty for an unknown WebEnv."""
        with self._lock:
            return {str(n): list(ids) for n, ids in enumerate(self._sessions.get(webenv, []), start=1)}

    def fetch(self, webenv: str, query_key: str) -> list[str] | None:
        with self._lock:
            session = self._sessions.get(webenv)
            if session is None or not query_key.isdigit() or not 1 <= int(query_key) <= len(session):
                return None
            return list(session[int(query_key) - 1])


class _BadRequest(Exception):
    """A request NCBI answers with an ERROR element (HTTP 200)."""


class _Unsupported(Exception):
    """Something the stand-in does not model: HTTP 400, so a misconfigured client fails loudly."""


# ---------------------------------------------------------------------------- parameters


def _one(params: dict[str, list[str]], name: str, default: str = "") -> str:
    values = params.get(name)
    return values[0].strip() if values else default


def _number(params: dict[str, list[str]], name: str, default: int) -> int:
    text = _one(params, name)
    if not text:
        return default
    if not text.isdigit():
        raise _BadRequest(f"Invalid {name}: {text}")
    return int(text)


def _id_groups(params: dict[str, list[str]]) -> list[list[str]]:
    """One group per ``id=`` parameter; each group holds that parameter's comma-joined ids."""
    groups = []
    for value in params.get("id", []):
        ids = [i.strip() for i in value.split(",") if i.strip()]
        if ids:
            groups.append(ids)
    return groups


def _unique(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


def _date_limit(params: dict[str, list[str]], world: PubMedWorld) -> DateLimit | None:
    try:
        return DateLimit.from_params(
            _one(params, "datetype"),
            _one(params, "mindate"),
            _one(params, "maxdate"),
            _one(params, "reldate"),
            world.today(),
        )
    except ValueError as error:
        raise _BadRequest(str(error)) from None


def _history_ids(params: dict[str, list[str]], history: _History) -> list[str] | None:
    webenv, query_key = _one(params, "WebEnv"), _one(params, "query_key")
    if not webenv or not query_key:
        return None
    ids = history.fetch(webenv, query_key)
    if ids is None:
        raise _BadRequest(f"Cannot retrieve history data. query_key: {query_key}, WebEnv: {webenv}")
    return ids


def _only_xml(params: dict[str, list[str]]) -> None:
    retmode = _one(params, "retmode", "xml").lower()
    if retmode not in ("xml", ""):
        raise _Unsupported(f"The stand-in serves XML only (retmode={retmode}).")


# ---------------------------------------------------------------------------- answers


def _elink(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    dbfrom = _one(params, "dbfrom", "pubmed")
    if dbfrom != "pubmed":
        raise _BadRequest(f"Invalid dbfrom: {dbfrom}")
    _only_xml(params)
    groups = _id_groups(params)
    if not groups:
        from_history = _history_ids(params, history)
        groups = [from_history] if from_history else []
    if not groups:
        raise _BadRequest("Empty id list - nothing todo")
    cmd = _one(params, "cmd", "neighbor")
    if cmd not in ("neighbor", "neighbor_score", "neighbor_history", "ncheck"):
        raise _BadRequest(f"Unknown cmd: {cmd}")
    linkname = _one(params, "linkname")
    limit = _date_limit(params, world)
    term = _one(params, "term")
    to_pubmed = _one(params, "db", "pubmed") == "pubmed"
    answers = []
    for ids in groups:
        invalid = [i for i in ids if not i.isdigit()]
        gone = [world.withdrawn(i) for i in ids if world.withdrawn(i)]
        if gone:
            answers.append(LinkSetAnswer(ids, error=gone[0]))
            continue
        if invalid:
            answers.append(LinkSetAnswer(ids, error=f"Invalid uid {invalid[0]} at position={ids.index(invalid[0])}"))
            continue
        if empty:
            answers.append(LinkSetAnswer(ids))
            continue
        if cmd == "ncheck":
            wanted = linkname or "pubmed_pubmed"
            answers.append(
                LinkSetAnswer(
                    ids,
                    checks=[
                        (i, to_pubmed and bool(world.link_sets([i], linkname=wanted, limit=limit, term=term)))
                        for i in ids
                    ],
                )
            )
            continue
        sets = world.link_sets(ids, linkname=linkname, limit=limit, term=term) if to_pubmed else []
        if cmd == "neighbor_history":
            keys = []
            webenv = _one(params, "WebEnv")
            for name, links in sets:
                webenv, key = history.store([p for p, _ in links], webenv)
                keys.append((name, key))
            answers.append(LinkSetAnswer(ids, history=(webenv, keys) if keys else None))
        else:
            answers.append(LinkSetAnswer(ids, sets, with_scores=cmd == "neighbor_score"))
    return elink_xml(answers)


def _esearch(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    db = _one(params, "db", "pubmed")
    if db != "pubmed":
        raise _BadRequest(f"Invalid db name specified: {db}")
    _only_xml(params)
    term = _one(params, "term")
    if not term:
        raise _BadRequest("Empty term and query_key - nothing todo")
    retstart = _number(params, "retstart", 0)
    retmax = min(_number(params, "retmax", 20), 10_000)
    if retstart > ESEARCH_RETSTART_CAP:
        raise _BadRequest(_RETSTART_MESSAGE)
    limit = _date_limit(params, world)
    if empty:
        return esearch_xml(count=0, retstart=retstart, translation=term)
    lists = _history_lists(term, params, history)
    result = world.search(term, limit=limit, sort=_one(params, "sort"), history=lists)
    if _one(params, "rettype").lower() == "count":
        return esearch_xml(count=len(result.pmids), count_only=True)
    session = None
    if _one(params, "usehistory").lower() in ("y", "yes"):
        session = history.store(result.pmids, _one(params, "WebEnv"))
    return esearch_xml(
        count=len(result.pmids),
        pmids=result.pmids[retstart : retstart + retmax],
        retstart=retstart,
        translation=result.translation,
        history=session,
        phrases_not_found=result.phrases_not_found,
        fields_not_found=result.fields_not_found,
    )


def _history_lists(term: str, params: dict[str, list[str]], history: _History) -> dict[str, list[str]]:
    """The id lists a term names as ``#N``, from the request's WebEnv (NCBI's error when one is missing)."""
    wanted = re.findall(r"#(\d+)", term)
    if not wanted:
        return {}
    webenv = _one(params, "WebEnv")
    lists = history.lists(webenv)
    missing = [key for key in wanted if key not in lists]
    if missing:
        raise _BadRequest(f"Cannot retrieve history data. query_key: {missing[0]}, WebEnv: {webenv}")
    return lists


def _requested_ids(params: dict[str, list[str]], history: _History) -> list[str]:
    ids = [i for group in _id_groups(params) for i in group]
    if ids:
        return _unique(ids)
    from_history = _history_ids(params, history)
    if from_history is None:
        raise _BadRequest("Empty id list - nothing todo")
    retstart = _number(params, "retstart", 0)
    retmax = _number(params, "retmax", 20)
    return from_history[retstart : retstart + retmax]


def _efetch(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    db = _one(params, "db", "pubmed")
    if db != "pubmed":
        raise _BadRequest(f"Invalid db name specified: {db}")
    _only_xml(params)
    ids = _requested_ids(params, history)
    if empty:
        return pubmed_articles_xml([])
    return pubmed_articles_xml(filter(None, (world.article_xml(p) for p in ids)))


def _esummary(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    db = _one(params, "db", "pubmed")
    if db != "pubmed":
        raise _BadRequest(f"Invalid db name specified: {db}")
    _only_xml(params)
    ids = _requested_ids(params, history)
    if empty:
        return esummary_xml([])
    return esummary_xml([world.docsum(p) or esummary_missing(p) for p in ids])


def _epost(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    db = _one(params, "db", "pubmed")
    if db != "pubmed":
        raise _BadRequest(f"Invalid db name specified: {db}")
    ids = _unique(i for group in _id_groups(params) for i in group)
    if not ids:
        raise _BadRequest("Empty id list - nothing todo")
    if empty:
        return epost_xml("", 0)
    valid = [i for i in ids if i.isdigit()]
    invalid = [i for i in ids if not i.isdigit()]
    if not valid:
        raise _BadRequest("IDs contain invalid characters which was treated as delimiters.")
    webenv, key = history.store(valid, _one(params, "WebEnv"))
    return epost_xml(webenv, key, invalid)


def _einfo(world: PubMedWorld, history: _History, params: dict[str, list[str]], *, empty: bool) -> str:
    _only_xml(params)
    db = _one(params, "db")
    if not db:
        return einfo_list_xml()
    if db != "pubmed":
        raise _BadRequest(f"Invalid DB name specified: {db}")
    return einfo_pubmed_xml(0 if empty else len(world), world.last_update())


_ANSWERS: dict[str, Callable[..., str]] = {
    "elink": _elink,
    "esearch": _esearch,
    "efetch": _efetch,
    "esummary": _esummary,
    "epost": _epost,
    "einfo": _einfo,
}


# ---------------------------------------------------------------------------- the server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a "slow" answer in flight must not hold up close()
    allow_reuse_address = True
    stand_in: EutilsStandIn


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms delayed-ACK stall
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's naming)
        self.server.stand_in._handle(self, "GET")

    def do_POST(self) -> None:  # noqa: N802
        self.server.stand_in._handle(self, "POST")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Quiet: the stand-in keeps its own log (EutilsStandIn.requests)."""


class EutilsStandIn:
    """NCBI E-utilities on 127.0.0.1 (an OS-chosen port unless ``port`` is given).

    Usable as a context manager; the server runs in a daemon thread from construction
    until ``close()``. Settings are attributes and may be changed while it runs.
    """

    def __init__(
        self,
        world: PubMedWorld,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        enforce_rate_limit: bool = True,
        rate_window: float = 1.0,
        limit_without_key: int = 3,
        limit_with_key: int = 10,
        max_url_length: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        ignore_retstart: bool = False,
    ) -> None:
        self.world = world
        self.ignore_retstart = ignore_retstart  # a broken mirror: every ESearch page is the first
        self.enforce_rate_limit = enforce_rate_limit
        self.rate_window = rate_window
        self.limit_without_key = limit_without_key
        self.limit_with_key = limit_with_key
        self.max_url_length = max_url_length
        self.clock = clock
        self.rate_violations = 0
        self._lock = threading.Lock()
        self._log: list[LoggedRequest] = []
        self._faults: list[_Fault] = []
        self._served: dict[str, deque[float]] = {}
        self._history = _History()
        self._server = _Server((host, port), _Handler)
        self._server.stand_in = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="eutils-stand-in", daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/entrez/eutils/"

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    def inject(
        self,
        fault: int | str,
        endpoint: str | None = None,
        times: int = 1,
        *,
        retry_after: float | None = None,
        delay: float = 1.0,
        message: str = "",
        record: object = None,
        location: str = "",
        ids: Sequence[str] = (),
    ) -> None:
        """Make the next ``times`` requests (to ``endpoint``, or to any) fail in one way.

        ``fault``: an HTTP status (429 gets NCBI's JSON body and ``Retry-After`` when
        ``retry_after`` is given; others an HTML page), or one of "truncate" (200, the real
        answer cut in half, no Content-Length), "html" (200, an HTML error page), "slow"
        (answer after ``delay`` seconds), "reset" (close the connection unanswered), "empty"
        (a well-formed answer with nothing in it), "error" (``<ERROR>message</ERROR>`` in the
        endpoint's root), "drip" (the real answer a few bytes at a time, ``delay`` seconds apart),
        "drip_headers" (the status line, then NCBI's header lines one every ``delay`` seconds, then the
        real answer), a redirect (301, 302, 303, 307 or 308 with ``location``: a mirror that moved, whose
        ``Location`` is ``location`` with the endpoint's file name and the request's query string),
        "count" (ESearch's answer with ``<Count>message</Count>``), "stowaway" (EFetch's answer with
        ``record``, a Record nobody asked for, added), "ids" (the real answer with the raw ``ids``, written
        as they are, at the head of ESearch's IdList or of each of ELink's LinkSetDb: past the stand-in's own
        ranking, which reads ids as numbers). Faults queue up and are used in the order injected.
        """
        if isinstance(fault, int):
            if fault in REDIRECT_STATUSES and not location:
                raise ValueError(f"a redirect ({fault}) needs a location")
            if not 400 <= fault <= 599 and fault not in REDIRECT_STATUSES:
                raise ValueError(f"an injected status must be a redirect, 4xx or 5xx, not {fault}")
        elif fault not in NAMED_FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected a status or one of {NAMED_FAULTS}")
        if endpoint is not None and endpoint not in ENDPOINTS.values():
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.append(
                _Fault(fault, endpoint, times, retry_after, delay, message, record, location, tuple(ids))
            )

    @property
    def pending_faults(self) -> list[tuple[int | str, str | None, int]]:
        """(fault, endpoint, remaining uses) still queued."""
        with self._lock:
            return [(f.kind, f.endpoint, f.remaining) for f in self._faults]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EutilsStandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def serve_until_interrupted(self) -> None:
        """Block the calling thread until Ctrl-C or SIGTERM (the server keeps running meanwhile)."""
        try:
            while self._thread.is_alive():
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass

    # -- request handling

    def _take_fault(self, endpoint: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.endpoint in (None, endpoint):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
            return None

    def _admit(self, params: dict[str, list[str]], client: str, now: float) -> tuple[bool, str, int, int]:
        """Count the request against its rolling window; (admitted, who, count, limit)."""
        key = _one(params, "api_key")
        who = key or client
        limit = self.limit_with_key if key else self.limit_without_key
        with self._lock:
            served = self._served.setdefault(("key:" if key else "ip:") + who, deque())
            while served and served[0] <= now - self.rate_window:
                served.popleft()
            count = len(served) + 1
            if count > limit:
                self.rate_violations += 1
                if self.enforce_rate_limit:
                    return False, who, count, limit
            served.append(now)
            return True, who, count, limit

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            bisect.insort(self._log, entry, key=lambda e: e.time)  # a slow answer is logged by arrival

    def _handle(self, handler: _Handler, method: str) -> None:
        arrived = self.clock()
        split = urlsplit(handler.path)
        params = parse_qs(split.query, keep_blank_values=True)
        if method == "POST":
            length = int(handler.headers.get("Content-Length") or 0)
            body = handler.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            for name, values in parse_qs(body, keep_blank_values=True).items():
                params.setdefault(name, []).extend(values)
        file_name = split.path.rsplit("/", 1)[-1]
        endpoint = ENDPOINTS.get(file_name, file_name)

        def log(status: int, fault: str = "") -> None:
            authorization = handler.headers.get("Authorization", "")
            self._record(
                LoggedRequest(arrived, endpoint, method, params, status, fault, len(handler.path), authorization)
            )

        if len(handler.path) > self.max_url_length:
            log(414)
            _send(handler, 414, _html_page(414, "Request-URI Too Long"), HTML)
            return
        if file_name not in ENDPOINTS:
            log(404)
            _send(handler, 404, _html_page(404, "Not Found"), HTML)
            return
        if self._refuse_rejected_key(handler, params, log):
            return
        admitted, who, count, limit = self._admit(params, handler.client_address[0], arrived)
        if not admitted:
            log(429, "rate-limit")
            _send(handler, 429, _rate_limit_body(who, count, limit), "application/json")
            return
        fault = self._take_fault(endpoint)
        if fault is None:
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status)
            _send(handler, status, body_bytes, content_type)
            return
        self._answer_with_fault(handler, fault, endpoint, params, log)

    def _answer(self, endpoint: str, params: dict[str, list[str]], *, empty: bool) -> tuple[int, str, bytes]:
        try:
            if endpoint == "esearch" and self.ignore_retstart:
                params = {**params, "retstart": ["0"]}
            text = _ANSWERS[endpoint](self.world, self._history, params, empty=empty)
            return 200, XML, text.encode("utf-8")
        except _BadRequest as error:
            return 200, XML, root_error_xml(endpoint, str(error)).encode("utf-8")
        except _Unsupported as error:
            return 400, "text/plain; charset=UTF-8", str(error).encode("utf-8")

    def _answer_with_fault(
        self, handler: _Handler, fault: _Fault, endpoint: str, params: dict[str, list[str]], log: Callable[..., None]
    ) -> None:
        kind = fault.kind
        if kind == 429:
            log(429, fault.name)
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            key = _one(params, "api_key")
            limit = self.limit_with_key if key else self.limit_without_key
            _send(
                handler,
                429,
                _rate_limit_body(key or handler.client_address[0], limit + 1, limit),
                "application/json",
                headers,
            )
        elif kind in REDIRECT_STATUSES:
            log(kind, fault.name)
            target = fault.location + handler.path.split("?", 1)[0].rsplit("/", 1)[-1]
            query = urlsplit(handler.path).query
            headers = {"Location": target + ("?" + query if query else "")}
            _send(handler, kind, _html_page(kind, "Moved"), HTML, headers)
        elif isinstance(kind, int):
            log(kind, fault.name)
            titles = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            _send(handler, kind, _html_page(kind, titles.get(kind, "Error")), HTML, headers)
        elif kind == "reset":
            log(0, fault.name)
            # SO_LINGER with a zero timeout turns close() into a TCP reset.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.close_connection = True
            handler.connection.close()
        elif kind == "html":
            log(200, fault.name)
            _send(handler, 200, _html_page(200, "Temporarily unavailable"), HTML)
        elif kind == "error":
            log(200, fault.name)
            message = fault.message or _DEFAULT_ERRORS[endpoint]
            _send(handler, 200, root_error_xml(endpoint, message).encode("utf-8"), XML)
        elif kind == "empty":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=True)
            log(status, fault.name)
            _send(handler, status, body_bytes, content_type)
        elif kind == "truncate":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            _send(handler, status, body_bytes[: len(body_bytes) // 2], content_type, until_close=True)
        elif kind == "drip":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            _drip(handler, status, body_bytes, content_type, fault.delay)
        elif kind == "drip_headers":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            _drip_headers(handler, status, body_bytes, content_type, fault.delay)
        elif kind == "count":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            body_bytes = re.sub(rb"<Count>\d+</Count>", f"<Count>{fault.message}</Count>".encode(), body_bytes, count=1)
            _send(handler, status, body_bytes, content_type)
        elif kind == "stowaway":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            extra = PubMedWorld([fault.record]).article_xml(fault.record.pmid) or ""  # type: ignore[attr-defined]
            body_bytes = body_bytes.replace(b"</PubmedArticleSet>", extra.encode() + b"</PubmedArticleSet>")
            _send(handler, status, body_bytes, content_type)
        elif kind == "ids":
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            _send(handler, status, _with_raw_ids(endpoint, body_bytes, fault.ids), content_type)
        elif kind == "slow":
            time.sleep(fault.delay)
            status, content_type, body_bytes = self._answer(endpoint, params, empty=False)
            log(status, fault.name)
            _send(handler, status, body_bytes, content_type)

    # -- rejected API keys

    rejected_api_keys: frozenset[str] = frozenset()

    def reject_api_key(self, key: str) -> None:
        """From now on, answer every request carrying ``key`` as NCBI answers a key it does not accept."""
        with self._lock:
            self.rejected_api_keys = self.rejected_api_keys | {key}

    def _refuse_rejected_key(self, handler: _Handler, params: dict[str, list[str]], log: Callable[..., None]) -> bool:
        """HTTP 400 with NCBI's JSON body, which echoes the key, when the request's key was rejected."""
        key = _one(params, "api_key")
        if not key or key not in self.rejected_api_keys:
            return False
        log(400, "invalid-api-key")
        body = {"error": "API key invalid", "api-key": key, "type": "invalid", "status": "unknown"}
        _send(handler, 400, json.dumps(body, separators=(",", ":")).encode(), "application/json")
        return True


def _with_raw_ids(endpoint: str, body: bytes, ids: Sequence[str]) -> bytes:
    """An ESearch answer with ``ids`` first in its IdList, or an ELink answer with a Link for each first in
    every LinkSetDb (scored when the answer's links are): as a mirror that mangles ids would send them."""
    if endpoint == "esearch":
        listed = "".join(f"<Id>{xml_escape(i)}</Id>\n" for i in ids).encode()
        if b"<IdList/>" in body:
            return body.replace(b"<IdList/>", b"<IdList>\n" + listed + b"</IdList>", 1)
        return body.replace(b"<IdList>\n", b"<IdList>\n" + listed, 1)
    if endpoint == "elink":
        score = "<Score>1</Score>" if b"<Score>" in body else ""
        links = "".join(f"\t\t<Link>\n\t\t\t<Id>{xml_escape(i)}</Id>{score}\n\t\t</Link>\n" for i in ids)
        return re.sub(
            rb"(<LinkSetDb>\s*<DbTo>pubmed</DbTo>\s*<LinkName>[^<]*</LinkName>\n)",
            lambda m: m.group(1) + links.encode(),
            body,
        )
    raise ValueError(f"raw ids go into ESearch or ELink answers, not {endpoint}")


def _rate_limit_body(who: str, count: int, limit: int) -> bytes:
    """NCBI's 429 body; "api-key" holds the key, or the client's address when there is none."""
    body = {"error": "API rate limit exceeded", "api-key": who, "count": str(count), "limit": str(limit)}
    return json.dumps(body, separators=(",", ":")).encode()


def _send(
    handler: BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str] | None = None,
    *,
    until_close: bool = False,
) -> None:
    """Write one answer. ``until_close``: no Content-Length; the body ends when the connection does."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        if until_close:
            handler.send_header("Connection", "close")
            handler.close_connection = True
        else:
            handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True  # the client gave up (e.g. its timeout fired during "slow")


def _drip(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, delay: float) -> None:
    """An answer whose bytes arrive slowly: the headers at once, then 16 bytes every ``delay`` seconds."""
    try:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.flush()
        for start in range(0, len(body), 16):
            handler.wfile.write(body[start : start + 16])
            handler.wfile.flush()
            time.sleep(delay)
    except (BrokenPipeError, ConnectionResetError, OSError):
        handler.close_connection = True  # the client gave up, as it should


def _drip_headers(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str, delay: float) -> None:
    """An answer whose head arrives slowly: the status line, then one header line (those NCBI sends) every
    ``delay`` seconds, then the body at once. A read timeout longer than ``delay`` never fires."""
    lines = [
        f"HTTP/1.1 {status} {handler.responses[status][0]}",
        f"Date: {handler.date_time_string()}",
        "Server: Apache",
        "Strict-Transport-Security: max-age=31536000; includeSubDomains; preload",
        "Referrer-Policy: origin-when-cross-origin",
        "Content-Security-Policy: upgrade-insecure-requests",
        "Access-Control-Allow-Origin: *",
        "Cache-Control: private",
        "NCBI-PHID: 939B4C8A6A2F1E0500004B1F3E9A7C2D.1.1.m_5",
        "NCBI-SID: 6A2F1E0B3E9A7C2D_0000SID",
        "X-RateLimit-Limit: 3",
        "X-RateLimit-Remaining: 2",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    try:
        for line in lines:
            handler.wfile.write(line.encode("latin-1") + b"\r\n")
            handler.wfile.flush()
            time.sleep(delay)
        handler.wfile.write(b"\r\n" + body)
        handler.wfile.flush()
    except (BrokenPipeError, ConnectionResetError, OSError):
        handler.close_connection = True  # the client gave up, as it should


# ---------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> None:
    """Serve tests/data/records.py's world until interrupted, printing the base URL first."""
    from tests.data.records import build_world

    parser = argparse.ArgumentParser(description="NCBI E-utilities stand-in serving il2watch's test world.")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--no-rate-limit", action="store_true", help="do not refuse requests beyond NCBI's rate")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with EutilsStandIn(
        build_world(), host=args.host, port=args.port, enforce_rate_limit=not args.no_rate_limit
    ) as server:
        print(server.base_url, flush=True)
        server.serve_until_interrupted()


if __name__ == "__main__":
    main()
