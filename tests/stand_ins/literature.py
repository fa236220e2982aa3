"""One model of the literature that every citation stand-in answers from.

``Literature`` wraps the ``PubMedWorld`` the E-utilities stand-in serves and adds what PubMed does not
know: works outside PubMed (preprints with a Europe PMC ``PPR`` id, patents, theses), OpenAlex ids, and
which citation index knows which citation. Real indexes disagree: PubMed's ``citedin`` only knows a
citation when the citing paper's references are in PMC, iCite knows more PubMed papers, Europe PMC also
knows preprints, OpenAlex knows works by DOI. A citation here names the indexes that list it, so a test
can put a citing paper in all of them, in one only, or in Europe PMC only as a preprint.

The iCite, Europe PMC and OpenAlex stand-ins read this model at the moment of each request, so a test
changes the world (a preprint gains a PMID, an index starts listing a citation) while servers run.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date

from tests.stand_ins.pubmed_world import PubMedWorld, Record, plain_text

INDEXES = ("pubmed", "icite", "europepmc", "openalex")


@dataclass(frozen=True)
class Work:
    """A work that is not (or not yet) a PubMed record: a preprint, a patent, a thesis, a journal article
    PubMed lacks. ``pmid`` is set once PubMed indexes it (the world then holds a record with that PMID)."""

    key: str  # how tests name it, e.g. "preprint-1"
    title: str
    abstract: str = ""  # may carry <i>, <sup>, <sub> as Europe PMC sends them
    authors: tuple[tuple[str, str], ...] = ()  # (first name, last name)
    doi: str = ""
    ppr: str = ""  # Europe PMC preprint id, "PPR123456"
    europepmc_source: str = "PPR"  # PPR, PAT (patents), ETH (theses), AGR, CBA, …; MED when it has a PMID
    europepmc_id: str = ""  # the id Europe PMC lists it under when not PPR (a patent number…)
    openalex: str = ""  # "W…"; made up from the key when empty
    pmid: str = ""
    kind: str = "preprint"  # OpenAlex type: preprint, article, review, dissertation, patent…
    server: str = "bioRxiv"  # the preprint server or journal that published it
    published: date = date(2024, 5, 2)
    first_indexed: date = date(2024, 5, 3)  # Europe PMC firstIndexDate
    created: date = date(2024, 5, 4)  # OpenAlex created_date
    retracted: bool = False  # OpenAlex is_retracted
    withdrawn: bool = False  # Europe PMC marks a withdrawn preprint
    journal_version: str = ""  # the PMID of the journal article it became: Europe PMC links the two
    # How an index writes the DOI, when it differs from ``doi`` (case, URL prefix): {"europepmc": "10.1101/X"}
    doi_as_written: tuple[tuple[str, str], ...] = ()

    def doi_in(self, index: str) -> str:
        return dict(self.doi_as_written).get(index, self.doi)


@dataclass
class _Citation:
    indexes: set[str] = field(default_factory=set)


def openalex_id_for(key: str) -> str:
    """A stable, made-up OpenAlex id: 'W4' and ten digits derived from ``key``."""
    digest = int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) % 10**10
    return f"W4{digest:010d}"


class Literature:
    """PubMed's records, works outside PubMed, and which index knows which citation."""

    def __init__(self, world: PubMedWorld):
        self.world = world
        self._lock = threading.RLock()
        self._works: dict[str, Work] = {}
        # cited PMID -> citing key ("pmid:123" or a work key) -> the indexes that list the citation
        self._citations: dict[str, dict[str, _Citation]] = {}
        # indexes answering "nobody cites it" for every paper (an outage that looks like news)
        self.empty: set[str] = set()
        self._merged: dict[str, str] = {}  # PMID -> the OpenAlex id its work was merged into

    # -- works

    def add_work(self, work: Work) -> Work:
        if not work.openalex:
            work = replace(work, openalex=openalex_id_for(work.key))
        with self._lock:
            self._works[work.key] = work
        return work

    def work(self, key: str) -> Work:
        with self._lock:
            return self._works[key]

    def works(self) -> list[Work]:
        with self._lock:
            return list(self._works.values())

    def index_in_pubmed(self, key: str, pmid: str, record: Record) -> Work:
        """A work gains a PMID: the world gets ``record`` (which should carry the work's DOI) and the
        work remembers its PMID, so every index can now name it by PMID too."""
        self.world.add(record)
        with self._lock:
            work = replace(self._works[key], pmid=str(pmid))
            self._works[key] = work
        return work

    def by_ppr(self, ppr: str) -> Work | None:
        with self._lock:
            return next((w for w in self._works.values() if w.ppr == ppr), None)

    def preprint_of(self, pmid: str) -> Work | None:
        """The preprint whose journal version is the PubMed record ``pmid``."""
        with self._lock:
            return next((w for w in self._works.values() if w.journal_version == str(pmid)), None)

    def by_europepmc_id(self, source: str, europepmc_id: str) -> Work | None:
        with self._lock:
            return next(
                (w for w in self._works.values() if w.europepmc_source == source and w.europepmc_id == europepmc_id),
                None,
            )

    def by_openalex(self, openalex: str) -> Work | None:
        with self._lock:
            return next((w for w in self._works.values() if w.openalex == openalex), None)

    # -- citations

    def cite(self, citing: str, cited: str, indexes: Iterable[str] = INDEXES) -> None:
        """``citing`` (a PMID, or a work's key) cites the PubMed record ``cited``, as ``indexes`` know it.

        PubMed's own ``citedin`` (ELink) only hears of it when "pubmed" is among the indexes.
        """
        chosen = set(indexes)
        unknown = chosen - set(INDEXES)
        if unknown:
            raise ValueError(f"unknown index {sorted(unknown)}; expected some of {INDEXES}")
        key = self._key(citing)
        with self._lock:
            entry = self._citations.setdefault(str(cited), {}).setdefault(key, _Citation())
            entry.indexes |= chosen
        if "pubmed" in chosen:
            if not key.startswith("pmid:"):
                raise ValueError(f"{citing!r} has no PMID, so PubMed's citedin cannot list it")
            self.world.cite(key[5:], str(cited))

    def _key(self, citing: str) -> str:
        citing = str(citing)
        if citing.isdigit():
            return f"pmid:{citing}"
        with self._lock:
            if citing not in self._works:
                raise KeyError(f"no work {citing!r}; add_work() it first")
        return citing

    def citing(self, cited: str, index: str) -> list[str]:
        """Keys of what ``index`` lists as citing ``cited``: "pmid:…" for PubMed papers, else work keys.

        A work that has gained a PMID is listed by PMID by indexes that know PubMed (iCite, Europe PMC's
        MED, OpenAlex's ids.pmid), and a citation known only through the PubMed world (``world.cite``)
        counts for PubMed alone.
        """
        if index in self.empty:
            return []
        with self._lock:
            entries = dict(self._citations.get(str(cited), {}))
        keys = [self._as_pmid(key) for key, entry in entries.items() if index in entry.indexes]
        if index == "pubmed":
            keys = sorted(set(keys) | {f"pmid:{p}" for p in self.world.citing(str(cited))})
        return sorted(set(keys), key=_newest_first)

    def _as_pmid(self, key: str) -> str:
        """A work PubMed has indexed is named by its PMID."""
        if key.startswith("pmid:"):
            return key
        work = self.work(key)
        return f"pmid:{work.pmid}" if work.pmid else key

    # -- how each index describes a work

    def ids_of(self, key: str) -> dict[str, str]:
        """pmid, doi, pmcid, ppr, openalex of a citing key, as far as the model knows them."""
        if key.startswith("pmid:"):
            pmid = key[5:]
            rec = self.world.get(pmid)
            work = self._work_with_pmid(pmid)
            ids = {"pmid": pmid, "doi": rec.doi if rec else "", "pmcid": rec.pmcid if rec else ""}
            ids["ppr"] = work.ppr if work else ""
            ids["openalex"] = self.openalex_of_pmid(pmid)
            return ids
        work = self.work(key)
        pmcid = ""
        if work.pmid:
            rec = self.world.get(work.pmid)
            pmcid = rec.pmcid if rec else ""
        return {"pmid": work.pmid, "doi": work.doi, "pmcid": pmcid, "ppr": work.ppr, "openalex": work.openalex}

    def _work_with_pmid(self, pmid: str) -> Work | None:
        with self._lock:
            return next((w for w in self._works.values() if w.pmid == pmid), None)

    def record(self, pmid: str) -> Record | None:
        return self.world.get(pmid)

    def openalex_of_pmid(self, pmid: str) -> str:
        with self._lock:
            if pmid in self._merged:
                return self._merged[pmid]
        work = self._work_with_pmid(pmid)
        return work.openalex if work else openalex_id_for(f"pmid:{pmid}")

    def merge_openalex(self, pmid: str, new_id: str) -> None:
        """OpenAlex merges the work of PubMed record ``pmid`` into ``new_id``: the old id names nothing now."""
        with self._lock:
            self._merged[str(pmid)] = new_id

    def key_of_openalex(self, openalex: str) -> str | None:
        """The citing key an OpenAlex id stands for (PubMed records get ids made up from their PMID)."""
        with self._lock:
            merged = dict(self._merged)
        if openalex in merged.values():
            return next(f"pmid:{pmid}" for pmid, new in merged.items() if new == openalex)
        work = self.by_openalex(openalex)
        if work is not None:
            return f"pmid:{work.pmid}" if work.pmid else work.key
        for pmid in self.world.pmids():
            if openalex_id_for(f"pmid:{pmid}") == openalex and pmid not in merged:
                return f"pmid:{pmid}"
        return None


def _newest_first(key: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", key)
    return (-int(digits) if digits else 0, key)


def words_of(text: str) -> list[str]:
    """Plain words of marked text, for OpenAlex's inverted abstract."""
    return plain_text(text).split()
