"""What il2watch says about a paper, computed once and kept in the library.

An ``Insight`` (summary, axis, molecules, trials, flags, relevance and its explanation) depends on the
paper's record (its follow-ups, such as a retraction link, included), on the reasons it was found for, on
the channel's votes and on the lexicon. It is stored with a digest of each, and computed again only when
one of them changed; the summary, the one part a language model may write, only when the record changed
(or a model is configured now and an extractive summary is stored). So a post, its digest entry,
``/il2 paper`` and the App Home show the same words, and each paper costs one model call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import replace

from il2watch import intel
from il2watch.library import Library, LibraryError, StoredInsight, paper_to_json
from il2watch.model import Insight, Paper, Reason

log = logging.getLogger("il2watch.insights")

EXTRACTIVE = ""  # the summariser name of il2watch's own extractive summary


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def record_key(paper: Paper) -> str:
    return _digest(paper_to_json(paper))


def evidence_key(reasons: Sequence[Reason], feedback: tuple[int, int], lexicon_key: str) -> str:
    found = sorted({(r.watch, r.kind, r.score, r.rank) for r in reasons}, key=repr)
    return _digest(json.dumps([found, list(feedback), lexicon_key]))


def lexicon_key(lexicon: intel.Lexicon) -> str:
    """A digest of the lexicon's entries: editing config/lexicon.toml re-tags papers when next shown."""
    return _digest(repr((lexicon.molecules, sorted(lexicon.cues.items()))))


class Insights:
    """The insight for a paper: the stored one while it is current, else computed (and kept, with ``keep``).

    Called like the ``InsightFor`` functions the renderers take. Without a summariser (slash commands,
    built before Slack's 3-second ack) any stored summary is used as it is and nothing is written.
    """

    def __init__(
        self,
        library: Library,
        lexicon: intel.Lexicon,
        *,
        summariser: intel.Summariser | None = None,
        summariser_name: str = EXTRACTIVE,
        keep: bool = True,
    ):
        self.library, self.lexicon, self.summariser = library, lexicon, summariser
        self.summariser_name = summariser_name if summariser is not None else EXTRACTIVE
        self.keep = keep
        self._lexicon_key = lexicon_key(lexicon)
        self._computed: dict[str, StoredInsight] = {}  # what this object computed, by paper

    def __call__(self, paper: Paper, reasons: list[Reason]) -> Insight:
        current, changed = self._current(paper, reasons)
        if self.keep and changed and paper.key and self.library.stored_papers([paper.key]):
            try:
                self.library.save_insight(paper.key, current)
            except LibraryError as error:  # shown all the same; computed again next time
                log.warning("could not keep what il2watch says about %s: %s", paper.key, error)
        return current.insight

    def current(self, paper: Paper, reasons: Sequence[Reason]) -> StoredInsight:
        """The insight as it should be stored now, written nowhere: the stored one (or the one this object
        computed last) if nothing it depends on changed. A poll analyses a paper while it is fetched and
        stores it moments later; the second call costs nothing."""
        return self._current(paper, reasons)[0]

    def _current(self, paper: Paper, reasons: Sequence[Reason]) -> tuple[StoredInsight, bool]:
        key = paper.identity
        feedback = self.library.feedback(key)
        record, evidence = record_key(paper), evidence_key(reasons, feedback, self._lexicon_key)
        stored = self.library.stored_insight(key)
        known = [k for k in (self._computed.get(key), stored) if k is not None and k.record_key == record]
        known = [k for k in known if self._summary_will_do(k)]
        for candidate in known:
            if candidate.evidence_key == evidence:
                return candidate, candidate != stored
        if known:  # the same record: only tags and relevance are computed again
            summary, name = known[0].insight.summary, known[0].summariser
        else:
            summary, name = None, self.summariser_name
        current = StoredInsight(self._analyse(paper, reasons, feedback, summary), record, evidence, name)
        self._computed[key] = current
        return current, True

    def _summary_will_do(self, stored: StoredInsight) -> bool:
        """An extractive summary is written again once a model is configured; otherwise any will do."""
        return self.summariser is None or stored.summariser == self.summariser_name

    def _analyse(
        self, paper: Paper, reasons: Sequence[Reason], feedback: tuple[int, int], summary: str | None
    ) -> Insight:
        model = self.summariser if summary is None else None
        fresh = intel.analyse(
            paper,
            reasons,
            lexicon=self.lexicon,
            feedback=feedback,
            summariser=model,
            concerned_axis=self.library.stored_axis(intel.concerned_pmids(paper)),  # a notice takes its paper's axis
        )
        return fresh if summary is None else replace(fresh, summary=summary)
