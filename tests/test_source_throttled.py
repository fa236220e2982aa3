"""A source that asks il2watch to wait for hours holds up no poll: the other sources' papers are posted now.

OpenAlex answers 429 with ``Retry-After: 3600`` once a key's daily budget is spent. Waiting MAX_WAIT before
each of four retries would hold every source's news for about eight minutes per request; instead the
request fails at once, the poll names OpenAlex, and OpenAlex is asked again next poll.
"""

from __future__ import annotations

import time

from tests.data import citations as C
from tests.test_sources import MUCH_LATER, NEW_CITING, ONLY, lab  # noqa: F401 (lab is a fixture)


def test_a_source_asking_for_an_hour_is_named_and_the_others_papers_are_posted_at_once(lab):  # noqa: F811
    _, path, only_openalex = ONLY["openalex"]
    lab.poll()
    C.add_new_citations(lab.literature)
    lab.openalex.inject(429, path_contains=path, retry_after=3600, times=1000)
    started = time.monotonic()
    report = lab.poll(IL2WATCH_HTTP_ATTEMPTS="5")
    took = time.monotonic() - started
    assert took < 30, f"the poll waited on OpenAlex ({took:.0f} s)"
    posted = lab.papers_posted()
    assert (NEW_CITING - only_openalex) <= set(posted) and set(posted.values()) == {1}
    assert not only_openalex & set(posted)
    assert "OpenAlex asks il2watch to wait 3600 s (HTTP 429); asked again next poll" in report.line()
    assert report.status == "ok"
    with lab.library() as library:
        assert library.source_status("openalex")["status"] in ("failed", "partial")
    lab.openalex.clear_faults()
    lab.poll(now=MUCH_LATER)  # OpenAlex answers again: its papers now, once each
    again = lab.papers_posted()
    assert set(again) >= NEW_CITING and set(again.values()) == {1}
