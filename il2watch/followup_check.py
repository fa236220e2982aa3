"""Finding follow-ups on posted papers and owing them to Slack, through the outbox.

- The scheduled check (``fetch`` then ``decide``): every posted paper's PMID, however old, EPosted in chunks
  of at most 10,000; one ESearch on that list for the records any follow-up has reached
  (``followups.PUBMED_FILTERS``); one EFetch of those few. At most three requests a chunk, two when nothing
  matched. A hit's record is compared with what the library knows: the follow-ups told before and those
  its stored record already had when it was posted (a paper with an erratum matches every day; only a
  later retraction in its record is news).
- A poll's new papers (``arrivals``): a notice about a posted paper (its ``RetractionOf`` …) is told as that
  paper's follow-up and not posted as a paper; so is the journal version of a posted preprint, linked or
  matched by title and authors.
- A lost library (``restore``): what posts and follow-up messages say in their metadata is read back.

Each follow-up is owed, in the same transaction that records it, as outbox rows: in every channel whose
post carried the paper, a ``followup`` (the thread reply) and a ``followup_update`` (the post updated with a
banner); and a ``followup_dm`` to each person who saved it, for the kinds that warrant one. Their keys come
from the follow-up's own, so the same follow-up found twice (after a lost library, say) is recognised in
the channel instead of told twice.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from il2watch import pubmed
from il2watch.eutils import Eutils
from il2watch.fields import Fields
from il2watch.followups import (
    EPOST_CHUNK,
    KINDS,
    PUBMED_FILTERS,
    Followup,
    as_published,
    citation_of,
    europepmc_followups,
    europepmc_versions,
    followups_in,
    journal_version_of,
    key_pmid,
    new_followups,
    notices_in,
    openalex_followups,
    paper_key,
    pmid_key,
)
from il2watch.identity import doi_of, ids_from_tokens, ppr_of
from il2watch.ids import batches
from il2watch.library import Library, StoredFollowup
from il2watch.library import paper_key as paper_key_of
from il2watch.model import Paper
from il2watch.sources.base import Oddities

log = logging.getLogger("il2watch.followups")

FOLLOWUP_KINDS = ("followup", "followup_update", "followup_dm")  # the outbox rows a follow-up is told by
# The kind of the followups row that says a paper's posted state is recorded (no follow-up's kind: never told).
POSTED_STATE = "posted"


def reply_key(followup: Followup, channel: str) -> str:
    return f"{followup.key}-r-{channel}"


def update_key(followup: Followup, channel: str) -> str:
    return f"{followup.key}-u-{channel}"


def standalone_key(followup: Followup, channel: str) -> str:
    return f"{followup.key}-s-{channel}"


def dm_key(followup: Followup, user: str) -> str:
    return f"{followup.key}-dm-{user}"


def followup_of(payload: Mapping[str, Any]) -> Followup:
    """The follow-up an outbox row (or a message's metadata) tells."""
    return Followup(
        str(payload.get("paper", "")),
        str(payload.get("kind", "")),
        str(payload.get("notice", "") or ""),
        str(payload.get("source", "") or ""),
    )


def key_of(library: Library, token: str) -> str:
    """The library's key of the paper an id token ("pmid:…") names; the token itself for a paper the
    library does not hold (it is the key that paper would get)."""
    return library.find_key(ids_from_tokens([token])) or paper_key_of(token)


def stored_followup(stored: StoredFollowup) -> Followup:
    return Followup(stored.paper, stored.kind, stored.notice, stored.source)


def told(library: Library, papers: Sequence[str]) -> dict[str, list[Followup]]:
    """The follow-ups told about each of ``papers`` (the ones Slack has or is to get)."""
    found = library.followups(papers, told=True)
    return {paper: [stored_followup(s) for s in rows if s.kind in KINDS] for paper, rows in found.items()}


# ---------------------------------------------------------------- owing a follow-up


def posted_channels(library: Library, paper: str) -> list[str]:
    """The channels where a post or digest Slack confirmed carries ``paper``: where a follow-up is told."""
    channels = []
    for channel in library.carrying_channels(paper):
        carrier = library.carrier(channel, paper)
        if carrier is not None and carrier.state == "sent":
            channels.append(channel)
    return channels


def save_followup(library: Library, followup: Followup, *, told: bool, how: str, now: str) -> bool:
    """Remember ``followup`` (call inside a transaction); False when it was known already."""
    return library.record_followup(
        key=followup.key,
        paper=followup.paper,
        kind=followup.kind,
        notice=followup.notice,
        source=followup.source,
        told=told,
        how=how,
        now=now,
    )


def owe(library: Library, followup: Followup, *, channels: Sequence[str], how: str, now: str) -> bool:
    """Record ``followup`` as told and create the outbox rows that tell it (call inside a transaction);
    False when it was known already. Its notice is claimed in each channel, so a watch that finds the notice
    (or the journal version) later does not post it as a paper."""
    paper = followup.paper
    if not save_followup(library, followup, told=True, how=how, now=now):
        return False
    payload = {"followup": followup.key, "paper": paper, "kind": followup.kind, "notice": followup.notice}
    payload["source"] = followup.source
    notice = key_of(library, followup.notice) if followup.notice else ""
    for channel in channels:
        claim = [notice] if notice and not library.claimed(channel, [notice]) else []
        if library.outbox_row(reply_key(followup, channel)) is None:
            library.enqueue(
                key=reply_key(followup, channel),
                channel=channel,
                kind="followup",
                papers=claim,
                payload=payload,
                now=now,
            )
        if library.outbox_row(update_key(followup, channel)) is None:
            library.enqueue(
                key=update_key(followup, channel), channel=channel, kind="followup_update", papers=(), payload=payload
            )
    if KINDS[followup.kind].savers and channels:
        for user in library.savers(paper):
            if library.outbox_row(dm_key(followup, user)) is None:
                library.enqueue(
                    key=dm_key(followup, user), channel=user, kind="followup_dm", papers=(), payload=payload, now=now
                )
    log.info("follow-up on %s: %s (%s), owed in %s", paper, followup.kind, followup.notice or "-", channels or "-")
    return True


def remember_posted_state(library: Library, paper: Paper, *, now: str, how: str = "posted") -> None:
    """What a paper's record said as it was posted (call inside the transaction that owes the post): the
    follow-ups it already carried, known and never told, and a row saying its posted state is recorded. The
    stored record changes later (discovery re-fetches a preprint that gained a PMID, ``/il2 paper`` looks it
    up); what it says then is news, not the state it was posted in."""
    for followup in followups_in(paper):
        save_followup(library, followup, told=False, how=how, now=now)
    save_followup(library, Followup(paper_key(paper), POSTED_STATE), told=False, how=how, now=now)


def posted_state_known(library: Library, paper: str) -> bool:
    return any(row.kind == POSTED_STATE for row in library.followups([paper]).get(paper, []))


def known(library: Library, paper: str, stored: Paper | None) -> set[tuple[str, str]]:
    """(kind, notice) of every follow-up of ``paper`` told or seen: the library's rows, including what its
    record said when it was posted. A paper posted before il2watch recorded that has only its stored record
    to go by."""
    rows = library.followups([paper]).get(paper, [])
    pairs = {(row.kind, row.notice) for row in rows}
    if stored is not None and (POSTED_STATE, "") not in pairs:
        pairs |= {(f.kind, f.notice) for f in followups_in(stored)}
    return pairs


# ---------------------------------------------------------------- the scheduled PubMed check


@dataclass
class Checked:
    """What PubMed says now about the posted papers some follow-up has reached."""

    posted: int = 0  # posted papers with a PMID, all asked about
    papers: list[Paper] = field(default_factory=list)  # the fresh records of those that matched
    sources: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)  # pmid -> link -> RefSource
    unreadable: dict[str, str] = field(default_factory=dict)
    chunks: int = 0


Posted = Mapping[str, Sequence[str]]  # {key: every id token it is known by} of the posted papers, oldest first


def posted_tokens(library: Library) -> dict[str, list[str]]:
    """The posted papers and their id tokens, oldest post first: what one check reads of them, once (the
    selectors below pick from it)."""
    return library.tokens_of(library.posted_papers())


def posted_pmids(posted: Posted) -> dict[str, str]:
    """{PMID: key} of every posted paper that has a PMID (a preprint keyed by its DOI may have gained one)."""
    found: dict[str, str] = {}
    for key, tokens in posted.items():  # oldest post first
        pmid = next((key_pmid(token) for token in tokens if key_pmid(token)), "")
        if pmid:
            found.setdefault(pmid, key)
    return found


_READ_ID = {"ppr": ppr_of, "doi": doi_of}


def posted_without_pmid(posted: Posted, kind: str) -> dict[str, str]:
    """{id: key} of every posted paper PubMed's check does not cover (no PMID) that has an id of ``kind``
    ("ppr": the ones Europe PMC is asked about; "doi": the ones OpenAlex is)."""
    read = _READ_ID[kind]
    found: dict[str, str] = {}
    for key, tokens in posted.items():
        if any(key_pmid(token) for token in tokens):
            continue  # PubMed's check covers it
        value = next((read(token.partition(":")[2]) for token in tokens if token.startswith(f"{kind}:")), "")
        if value:
            found.setdefault(value, key)
    return found


def fetch(posted: Posted, eutils: Eutils, *, chunk: int = EPOST_CHUNK) -> Checked:
    """Ask PubMed about every posted paper: EPost, ESearch on ``#1`` with the follow-up filters, EFetch of
    the hits (none when nothing matched)."""
    keys_by_pmid = posted_pmids(posted)
    pmids = list(keys_by_pmid)
    checked = Checked(posted=len(pmids))
    for part in batches(pmids, chunk):
        checked.chunks += 1
        session = pubmed.epost(eutils, part)
        found = pubmed.search_history(eutils, session, PUBMED_FILTERS)
        if not found.count:
            continue
        articles = pubmed.fetch_history(eutils, found)
        wanted = set(part)
        checked.papers += [replace(p, key=keys_by_pmid[p.pmid]) for p in articles.papers if p.pmid in wanted]
        checked.unreadable.update({k: v for k, v in articles.unreadable.items() if k in wanted})
        checked.sources.update(articles.sources)
    return checked


def missing_records(library: Library, posted: Posted) -> dict[str, str]:
    """{PMID: key} of the posted papers the library holds no record of: a library rebuilt from the channel
    knows what was posted, not the records (which a preprint's journal version is matched against)."""
    with_pmid = posted_pmids(posted)
    held = {paper.key for paper in library.papers(list(with_pmid.values()))}
    return {pmid: key for pmid, key in with_pmid.items() if key not in held}


def fetch_missing(library: Library, posted: Posted, eutils: Eutils) -> list[Paper]:
    """The records of posted papers the library lacks, from PubMed in EFetch's batches (no request when
    none is missing, as on every day but the first after a rebuild). Only reads the library."""
    missing = missing_records(library, posted)
    if not missing:
        return []
    fetched = pubmed.fetch_records(eutils, list(missing))
    return [replace(paper, key=missing[paper.pmid]) for paper in fetched.papers if paper.pmid in missing]


@dataclass
class Decision:
    """What one check found: the follow-ups to tell, the records to keep, what they already said."""

    told: list[tuple[Followup, list[str]]] = field(default_factory=list)  # (follow-up, channels)
    records: list[Paper] = field(default_factory=list)  # fresh records of posted papers, to store
    posted_state: list[Paper] = field(default_factory=list)  # stored records of papers posted before il2watch
    # recorded what their records said then: that is recorded now
    odd: list[str] = field(default_factory=list)  # one line per record read only in part, naming it


def decide(library: Library, checked: Checked) -> Decision:
    """The follow-ups among the fresh records that the library has not seen, and where to tell them."""
    decision = Decision()
    for fresh in checked.papers:
        paper = fresh.key
        stored = library.paper(paper)
        if stored is not None and not posted_state_known(library, paper):
            decision.posted_state.append(stored)  # posted before il2watch recorded it: its record then
        found = followups_in(fresh, checked.sources.get(fresh.pmid))
        for followup in new_followups(found, known(library, paper, stored)):
            decision.told.append((followup, posted_channels(library, paper)))
        decision.records.append(fresh)
    return decision


# ---------------------------------------------------------------- posted preprints PubMed does not index


class PreprintRecords(Protocol):
    """What the check asks of Europe PMC (``il2watch.sources.europepmc.EuropePmc``)."""

    def preprint_results(self, pprs: Sequence[str]) -> list[dict[str, Any]]: ...


def decide_preprints(library: Library, europepmc: PreprintRecords, wanted: Mapping[str, str]) -> Decision:
    """What Europe PMC says now of the posted preprints without a PMID, ``wanted`` as {PPR id: key}
    (``posted_without_pmid(…, "ppr")``; 50 a request): a withdrawal, or the journal article it links the
    preprint to ("Preprint of")."""
    decision = Decision()
    odd = Oddities("Europe PMC")
    for result in europepmc.preprint_results(sorted(wanted)):
        ppr = ppr_of(Fields(result).text("id"))
        key = wanted.get(ppr)
        if key is None:
            continue
        fields: list[str] = []
        found = europepmc_followups(result, key, odd=fields)
        links = europepmc_versions(result, odd=fields)
        found += [Followup(key, "published", key_of(library, token)) for token in links.published_as]
        if fields:
            odd.add("", ppr, f"{', '.join(fields[:5])} of an unexpected type (read without them)")
        stored = library.paper(key)
        for followup in new_followups(found, known(library, key, stored)):
            decision.told.append((followup, posted_channels(library, key)))
    decision.odd = [f"Europe PMC's {line}" for _, line in odd.warnings()]
    return decision


class WorksByDoi(Protocol):
    """What the check asks of OpenAlex (``il2watch.sources.openalex.OpenAlex``)."""

    def works_by_doi(self, dois: Sequence[str]) -> list[dict[str, Any]]: ...


def decide_openalex(library: Library, openalex: WorksByDoi, wanted: Mapping[str, str]) -> Decision:
    """What OpenAlex says now of the posted papers without a PMID, ``wanted`` as {DOI: key}
    (``posted_without_pmid(…, "doi")``; fifty a request): a work it marks ``is_retracted`` (a withdrawn
    preprint, a retracted article)."""
    decision = Decision()
    for work in openalex.works_by_doi(sorted(wanted)):
        key = wanted.get(doi_of(work.get("doi")))
        if key is None:
            continue
        seen = known(library, key, library.paper(key))
        if any(kind in ("retraction", "withdrawn") for kind, _ in seen):
            continue  # OpenAlex's one mark says no more than a retraction or withdrawal already known
        for followup in new_followups(openalex_followups(work, key), seen):
            decision.told.append((followup, posted_channels(library, key)))
    return decision


def record(library: Library, decision: Decision, *, how: str, now: str) -> list[Followup]:
    """Store what a check decided (call inside a transaction); the follow-ups newly owed. One that another
    source's part of the same check told already (a withdrawal both Europe PMC and OpenAlex mark) is not."""
    for stored in decision.posted_state:
        remember_posted_state(library, stored, now=now)
    owed = []
    for followup, channels in decision.told:
        if not new_followups([followup], known(library, followup.paper, None)):
            continue
        if owe(library, followup, channels=channels, how=how, now=now):
            owed.append(followup)
    return owed


# ---------------------------------------------------------------- a poll's new papers


@dataclass
class Arrivals:
    """What a poll's new papers are to posted papers: follow-ups to tell, papers not to post as new."""

    told: list[tuple[Followup, list[str]]] = field(default_factory=list)
    held: dict[str, set[str]] = field(default_factory=dict)  # channel -> papers told as follow-ups, not posted

    def hold(self, channels: Iterable[str], paper: str) -> None:
        for channel in channels:
            self.held.setdefault(channel, set()).add(paper)

    def held_in(self, channel: str, papers: Iterable[str]) -> set[str]:
        return set(papers) & self.held.get(channel, set())


def arrivals(library: Library, new: Mapping[str, Paper]) -> Arrivals:
    """Which of a poll's new papers are notices about posted papers, or journal versions of posted
    preprints: each is told as that paper's follow-up in the channels that have the paper, and not posted
    there itself, even when a query watch found it."""
    found = Arrivals()
    if not new:
        return found
    preprints = [p for p in library.papers(library.posted_preprints()) if p.is_preprint]
    published = told(library, [paper_key(p) for p in preprints])
    waiting = [p for p in preprints if not any(f.kind == "published" for f in published.get(paper_key(p), []))]
    seen: set[str] = set()
    for paper in new.values():
        arrival = paper_key(paper)
        for target_pmid, followup in notices_in(paper):
            target = key_of(library, pmid_key(target_pmid))
            channels = posted_channels(library, target)
            if not channels:
                continue
            found.hold(channels, arrival)
            stored = library.paper(target)
            followup = replace(followup, paper=target)
            followup = as_published(followup, stored) if stored is not None else followup
            if followup.key not in seen and new_followups([followup], known(library, target, stored)):
                seen.add(followup.key)
                found.told.append((followup, channels))
        if paper.is_preprint:
            continue
        for preprint in waiting:
            if not journal_version_of(paper, preprint):
                continue
            target = paper_key(preprint)
            channels = posted_channels(library, target)
            found.hold(channels, arrival)
            followup = Followup(target, "published", arrival, citation_of(paper))
            if followup.key not in seen and new_followups([followup], known(library, target, preprint)):
                seen.add(followup.key)
                found.told.append((followup, channels))
    return found


def record_arrivals(library: Library, found: Arrivals, *, now: str) -> list[Followup]:
    """Owe what a poll's arrivals told (call inside the poll's transaction)."""
    return [f for f, channels in found.told if owe(library, f, channels=channels, how="arrival", now=now)]


# ---------------------------------------------------------------- a lost library, rebuilt from the channel


def restore(library: Library, channel: str, event_type: str, payload: Mapping[str, Any], *, now: str) -> int:
    """What one of il2watch's messages says about follow-ups, recorded again (call inside the rebuild's
    transaction): a post's or digest's ``notices`` (what its papers' records said when they were posted)
    and ``followups`` (what it was updated with), a follow-up message's own. Returns how many were told."""
    count = 0
    notices = payload.get("notices")
    if event_type == "il2watch_paper" and isinstance(notices, list):
        notices = {str(payload.get("paper") or payload.get("pmid") or ""): notices}
    if isinstance(notices, dict):
        notices = {paper_key_of(str(paper)): listed for paper, listed in notices.items() if paper}
    if "notices" in payload:  # the post says what its papers' records carried, nothing included: their state
        if event_type == "il2watch_paper":
            carried = [payload.get("paper") or payload.get("pmid")]
        else:
            carried = list(payload.get("papers") or []) if event_type == "il2watch_digest" else []
        for paper in {paper_key_of(str(p)) for p in carried if p}:
            save_followup(library, Followup(paper, POSTED_STATE), told=False, how="restored", now=now)
    for paper, listed_notices in notices.items() if isinstance(notices, dict) else []:
        for entry in listed_notices if isinstance(listed_notices, list) else []:
            if isinstance(entry, dict) and str(entry.get("kind", "")) in KINDS and paper:
                known = Followup(str(paper), str(entry["kind"]), str(entry.get("notice") or ""))
                _restore_one(library, channel, known, told=False, now=now)
    listed = payload.get("followups") if event_type in ("il2watch_paper", "il2watch_digest") else None
    if event_type == "il2watch_followup":
        listed = [payload]
    for entry in listed if isinstance(listed, list) else []:
        if isinstance(entry, dict) and str(entry.get("kind", "")) in KINDS and entry.get("paper"):
            count += _restore_one(library, channel, followup_of(entry), told=True, now=now)
    return count


def _restore_one(library: Library, channel: str, followup: Followup, *, told: bool, now: str) -> int:
    save_followup(library, followup, told=told, how="restored", now=now)
    notice = key_of(library, followup.notice) if followup.notice else ""
    if told and notice and not library.claimed(channel, [notice]):
        library.enqueue(
            key=f"restored-{reply_key(followup, channel)}",
            channel=channel,
            kind="followup",
            papers=[notice],
            payload={"restored": True},
            state="sent",
        )
    return int(told)


# ---------------------------------------------------------------- what lists, /il2 paper and exports show


def shown(library: Library, papers: Sequence[Paper]) -> dict[str, list[Followup]]:
    """Every follow-up known about each paper: the ones told, and the ones its record carries (a paper
    posted with its erratum already linked, a retraction PubMed had marked before il2watch saw it)."""
    keys = [paper_key(p) for p in papers]
    found = told(library, keys)
    result: dict[str, list[Followup]] = {}
    for paper, key in zip(papers, keys):
        listed = list(found.get(key, []))
        for followup in followups_in(paper):
            if new_followups([followup], {(f.kind, f.notice) for f in listed}):
                listed.append(followup)
        if listed:
            result[key] = listed
    return result
