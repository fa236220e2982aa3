"""PubMed as a source: citing papers (ELink ``pubmed_pubmed_citedin``), similar articles (ELink with
scores) and query watches (ESearch by entry date), through the E-utilities calls in ``il2watch.pubmed``.

Costs, whatever the number of watched papers: two ELink requests (similar with scores, and citing), one
ESearch per query watch (more only past 9,999 matches, when the entry-date window is cut). Records are
EFetched by discovery for every source alike. Each watch fails alone: an ``<ERROR>`` in its ELink link
set or its ESearch failing sets that watch aside, named, while the others go on; only an NCBI that
cannot be reached at all fails the whole source (and so the poll's PubMed part).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from il2watch import pubmed
from il2watch.eutils import Eutils
from il2watch.identity import Ids
from il2watch.pubmed import PubMedError
from il2watch.sources.base import Finding, Found, Given, Kind, Request
from il2watch.transport import TransportError

NAME, LABEL = "pubmed", "PubMed"


def build(settings: Any, eutils: Eutils) -> PubMed:
    return PubMed(eutils, similar_max_rank=settings.similar_max_rank, similar_min_score=settings.similar_min_score)


class PubMed:
    name, label = NAME, LABEL

    def __init__(self, client: Eutils, *, similar_max_rank: int, similar_min_score: int):
        self.client = client
        self.similar_max_rank, self.similar_min_score = similar_max_rank, similar_min_score

    def find(self, request: Request) -> Finding:
        finding = Finding(NAME)
        paper_watches = [w for w in request.watches if w.pmid]
        if paper_watches:
            pmids = list(dict.fromkeys(w.pmid for w in paper_watches))
            try:
                links = pubmed.fetch_links(self.client, pmids)
            except TransportError as error:
                if error.kind == "unreachable":
                    raise
                links, failure = {}, str(error)
            except PubMedError as error:
                links, failure = {}, str(error)
            else:
                failure = ""
            for watch in paper_watches:
                if failure:
                    finding.failed[watch.id] = failure
                    continue
                found = links.get(watch.pmid)
                if found is None or found.error:
                    finding.failed[watch.id] = found.error if found else f"no ELink answer for PMID {watch.pmid}"
                    continue
                if found.empty and not request.known_links.get(watch.id):
                    # no links at all, and none known: a paper nobody cites yet, or a PMID PubMed lacks
                    if watch.pmid not in pubmed.verify_pmids(self.client, [watch.pmid]):
                        finding.failed[watch.id] = f"PMID {watch.pmid} is not in PubMed; fix or remove the watch"
                        continue
                finding.found += [
                    Found(Ids(pmid=p), watch.id, "cites", NAME) for p in found.cited_by if p != watch.pmid
                ]
                finding.found += self.similar(watch.id, found.similar)
                finding.answered.append(watch.id)
        for watch in request.watches:
            if watch.query:
                self._query(request, watch.id, watch.query, finding)
        return finding

    def similar(self, watch_id: str, similar: Sequence[tuple[str, int]]) -> list[Found]:
        """PubMed's similar articles kept by rank and score; the watched paper itself is already excluded."""
        kept = []
        for rank, (pmid, score) in enumerate(similar, start=1):
            if rank > self.similar_max_rank:
                break
            if score >= self.similar_min_score:
                kept.append(Found(Ids(pmid=pmid), watch_id, "similar", NAME, score=score, rank=rank))
        return kept

    def _query(self, request: Request, watch_id: str, query: str, finding: Finding) -> None:
        mindate, maxdate = request.windows.get(watch_id, ("", ""))
        try:
            found = pubmed.esearch(self.client, query, mindate=mindate, maxdate=maxdate, today=request.today)
        except TransportError as error:
            if error.kind == "unreachable":
                raise
            finding.failed[watch_id] = str(error)
            return
        except PubMedError as error:
            finding.failed[watch_id] = str(error)
            return
        finding.warnings += [(watch_id, problem.describe()) for problem in found.problems]
        finding.found += [Found(Ids(pmid=p), watch_id, "query", NAME) for p in found.pmids]
        finding.answered.append(watch_id)

    def probe(self, pmid: str) -> str:
        links = pubmed.fetch_links(self.client, [pmid]).get(pmid)
        if links is None or links.error:
            raise PubMedError(links.error if links else f"no ELink answer for PMID {pmid}")
        return f"PubMed answers: {len(links.cited_by):,} papers cite PMID {pmid}"

    def records(self, found: Sequence[Found]) -> Given:
        return Given()  # discovery EFetches every PMID, whoever listed it


KIND = Kind(NAME, ("eutils_url", "pubmed_refresh", "similar_max_rank", "similar_min_score"), build)
