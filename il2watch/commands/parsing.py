"""Reading what people type after ``/il2``: Slack's encoding undone, words split, references recognised.

Everything here is total: any string in, a value or ``None`` out, never an exception. The router turns a
``None`` into a short reply saying what was expected.
"""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from il2watch.identity import Ids, describe_key, doi_of, parse_reference
from il2watch.markup import counted, strip_invisible

MAX_TEXT = 1000  # longer command text is refused with a reply, not parsed
MAX_PMID = 99_999_999

# Slack sends mentions, channels and links as <@U123|name>, <#C123|name>, <!here>, <https://x|label>.
_SLACK_ENTITY = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_SPACE = re.compile(r"\s+")

_PMID_WORD = re.compile(r"(?i)^(?:pmid\s*[:#]?\s*)?0*([1-9]\d{0,7})\.?$")
_PUBMED_URL = re.compile(
    r"(?i)^(?:https?://)?(?:www\.)?(?:pubmed\.ncbi\.nlm\.nih\.gov|ncbi\.nlm\.nih\.gov/pubmed)/0*([1-9]\d{0,7})/?"
    r"(?:[?#].*)?$"
)
_DOI = re.compile(r"(?i)^(?:doi:\s*|(?:https?://)?(?:dx\.)?doi\.org/)?(10\.\d{4,9}/\S+)$")
_RECENT = re.compile(r"(?i)^(\d{1,6})\s*(d|day|days|w|wk|week|weeks)?$")


def clean_unicode(text: str) -> str:
    """Valid, visible Unicode: lone surrogates replaced, NFC, no controls or direction overrides."""
    repaired = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return strip_invisible(unicodedata.normalize("NFC", repaired), joiners=True)


def slack_to_plain(text: str) -> str:
    """What the person typed, from the text Slack sends: entities unwrapped, &amp; &lt; &gt; decoded."""

    def entity(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "@":
            return "@" + (label or target)
        if sigil == "#":
            return "#" + (label or target)
        if sigil == "!":
            return "@" + (label or target.split("^")[0])
        return label or target

    unwrapped = _SLACK_ENTITY.sub(entity, text)
    decoded = unwrapped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return _SPACE.sub(" ", clean_unicode(decoded)).strip()


def split_command(text: str) -> tuple[str, str]:
    """('search', 'low-dose IL-2') from 'Search  low-dose IL-2'; the name is lower-cased."""
    head, _, rest = text.strip().partition(" ")
    return head.lower(), rest.strip()


@dataclass(frozen=True)
class PaperRef:
    """A paper someone named, by one of its ids: a PMID, DOI, PMCID, Europe PMC PPR id or OpenAlex id."""

    ids: Ids

    @property
    def pmid(self) -> str:
        return self.ids.pmid

    @property
    def doi(self) -> str:
        return self.ids.doi

    @property
    def token(self) -> str:
        """The id as a library token: "pmid:…", "doi:…"."""
        return self.ids.key()

    def describe(self) -> str:
        return describe_key(self.token)


def parse_pmid(word: str) -> str | None:
    """'35217787', 'PMID:35217787', 'pmid 35217787' -> '35217787'; anything else -> None."""
    match = _PMID_WORD.match(word.strip())
    if not match or int(match.group(1)) > MAX_PMID:
        return None
    return match.group(1)


def parse_paper_ref(text: str) -> PaperRef | None:
    """A PMID, a DOI (bare, doi:, or a doi.org link), a PMCID, a Europe PMC PPR id, a PubMed, PMC or OpenAlex
    link; None when it is none of them."""
    text = text.strip().strip("<>()[]\"'“”‘’").strip().rstrip(".,;")
    if not text:
        return None
    pmid = parse_pmid(text)
    if pmid:
        return PaperRef(Ids(pmid=pmid))
    url = _PUBMED_URL.match(text)
    if url:
        return PaperRef(Ids(pmid=url.group(1)))
    named = parse_reference(text)
    if named is not None and not named.openalex:
        return PaperRef(named)
    doi = _DOI.match(text)
    if doi:
        value = doi_of(html.unescape(doi.group(1)).rstrip(".,;"))
        if value:
            return PaperRef(Ids(doi=value))
    return PaperRef(named) if named is not None else None


@dataclass(frozen=True)
class Window:
    """'/il2 recent' arguments: the newest ``count`` papers, or those entered since ``since``."""

    count: int | None = None
    days: int | None = None

    def since(self, today: date) -> str:
        return (today - timedelta(days=self.days)).isoformat() if self.days else ""

    def describe(self) -> str:
        if self.days:
            return f"entered in the last {counted(self.days, 'day')}"
        return f"{self.count} most recent" if self.count else "most recent"


def parse_window(text: str, *, max_count: int = 200, max_days: int = 3650) -> Window | None:
    """'' -> newest; '20' -> newest 20; '7d', '7 days', '2w' -> since then. None when out of range."""
    text = text.strip()
    if not text:
        return Window()
    match = _RECENT.match(text)
    if not match:
        return None
    number, unit = int(match.group(1)), (match.group(2) or "").lower()
    if number <= 0:
        return None
    if not unit:
        return Window(count=number) if number <= max_count else None
    days = number * (7 if unit.startswith("w") else 1)
    return Window(days=days) if days <= max_days else None


def parse_count(text: str, *, default: int | None = None, maximum: int = 200) -> int | None:
    """A positive whole number up to ``maximum``, or ``default`` for nothing; None when malformed."""
    text = text.strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= maximum else None


def slug(text: str, *, limit: int = 40) -> str:
    """A watch id from a query: lowercase ASCII words joined by '-', else 'query-' and a short hash."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    words = re.findall(r"[a-z0-9]+", ascii_text)
    joined = ""
    for word in words:
        candidate = f"{joined}-{word}" if joined else word
        if len(candidate) > limit:
            break
        joined = candidate
    return joined or "query-" + short_hash(text)


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:6]
