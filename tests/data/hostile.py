"""Hostile paper content: text that tries to ping a channel, smuggle a link, break markup, hide or reorder what a
reader sees, or overflow Slack's limits, in every field a PubMed record carries.

PubMed's XML may carry any of this (titles and abstracts are authors' text; a record is only as clean as the
journal's deposit), so il2watch must post it escaped and within Block Kit's limits. Everything here is valid
XML 1.0 character data, as NCBI's answers are; ``unparseable_record`` is the exception, on purpose.
"""

from __future__ import annotations

from datetime import date

from tests.stand_ins.pubmed_world import Author, Record, record

# Slack's control sequences: each one pings, links or renders as something other than its text if left raw.
MENTIONS = (
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!here|here>",
    "<!channel|@channel>",
    "<@U0HUMAN01>",
    "<@W0ADMIN01|boss>",
    "<#C0PAPERS1|il2-papers>",
    "<!subteam^S0IMMUNO|@immunology>",
    "<!date^1392734382^{date_short}|Feb 18, 2014>",
)
LINKS = (
    "<https://evil.example/login|PubMed record>",
    "<http://evil.example>",
    "<mailto:editor@evil.example|Editor>",
    "<https://pubmed.ncbi.nlm.nih.gov/35217787/|the review>",
    "<slack://open?team=T0IL2LAB>",
    "https://evil.example/?q=<!channel>&x=1",
)
MARKUP = (
    "&",
    "&amp;",
    "&lt;!channel&gt;",
    "&#60;!here&#62;",
    "&amp;lt;@U0HUMAN01&amp;gt;",
    "<script>alert(1)</script>",
    "</i></b>",
    "<i>never closed",
    "<b><i>crossed</b></i>",
    "<sup>2+</sup><sub>x</sub>",
    "*bold* _italic_ ~strike~",
    "`code` ```block```",
    "> quoted",
    ":rotating_light:",
    "@channel @here @everyone",
    "a|b",
    "<<>>",
    "<\n!channel>",
    '"><img src=x onerror=alert(1)>',
)
# Characters that hide or reorder text, or that a careless cut would break.
INVISIBLE = (
    "\u202eevil.exe\u202c",
    "\u202dLTR\u202c",
    "\u2067\u2066isolated\u2069\u2069",
    "IL\u200b-\u200c2\u200d",
    "\ufeffIL-2",
    "\u007f\u0085\u009b",
    "\u2028line\u2029paragraph",
    "tab\there\rreturn",
    "\u200e\u200f",
)
UNUSUAL = (
    "Z\u0334\u0321\u0322\u031b\u0317\u0353\u0330\u0324\u032a\u0349\u0320\u032c\u0332\u031e\u031d\u034e"
    "\u0343\u0305\u0341\u036b\u033f\u0307\u0367\u0305\u0300algo",
    "🧬🧪🦠 👩🏽\u200d🔬 🏳️\u200d🌈 🇺🇳 1️⃣",
    "白细胞介素-2 调节性T细胞 インターロイキン-2 인터류킨-2",
    "إنترلوكين-2 والخلايا التائية التنظيمية אינטרלוקין-2",
    "𝕀𝕃-𝟚 𝐓𝐫𝐞𝐠 𝔪𝔲𝔱𝔢𝔦𝔫",
    "\ufffd\ufdd0\uffef",
    "ﬁ ǅ Å Å ẞ",
    "\U0001d11e\U0001f600" * 3,
)
EVERYTHING = MENTIONS + LINKS + MARKUP + INVISIBLE + UNUSUAL

# Strings that must never reach Slack as they are: every one of them, raw, would ping, link or hide (the
# imitation of il2watch's own PubMed link included, which a check for "links il2watch makes" would let by).
NEVER_RAW = (
    *MENTIONS,
    *LINKS[:5],
    "<!channel",
    "<!here",
    "<!everyone",
    "<@U0HUMAN01",
    "<@W0ADMIN01",
    "<#C0PAPERS1",
    "<!subteam",
    "<!date",
    "<https://evil",
    "<http://evil",
    "<mailto:",
    "<slack://",
    "<script",
    "\u202e",
    "\u2067",
    "\ufeff",
)

FIRST_PMID = 42_100_001


def _sentence(n: int) -> str:
    return f"Regulatory T cells and IL-2 mutein {n} " + " ".join(EVERYTHING[n % len(EVERYTHING) :][:6]) + ". "


def hostile_records(entry_date: date, first_pmid: int = FIRST_PMID) -> list[Record]:
    """One record per kind of hostility, each in every field; their PMIDs count up from ``first_pmid``."""
    pmids = [str(first_pmid + n) for n in range(8)]
    everything = " ".join(EVERYTHING)
    return [
        record(
            pmids[0],
            entry_date=entry_date,
            title="IL-2 mutein " + " ".join(MENTIONS),
            abstract=(
                ("<!channel>", "RESULTS", " ".join(MENTIONS * 3)),
                ("<@U0HUMAN01>", "", "Low-dose IL-2 " + " ".join(MENTIONS)),
            ),
            authors=(
                Author("<!channel>", "<!here>", "<@U0HUMAN01>"),
                Author(collective="<!everyone> IL-2 & Treg Consortium"),
                Author("Ng", "<#C0PAPERS1|il2-papers>", "N"),
            ),
            journal="<!here> Journal of <@U0HUMAN01> Immunology",
            journal_iso="<!here> J Immunol",
            doi="10.5555/x>|<!channel>",
            pmcid="PMC1|<!here>",
            keywords=MENTIONS[:4],
            medline_date="<!channel> 2024 Spring",
            mesh=("Interleukin-2*",),
        ),
        record(
            pmids[1],
            entry_date=entry_date,
            title="Engineered IL-2: " + " ".join(LINKS),
            abstract=(("", "", " ".join(LINKS * 4)),),
            authors=(Author("<https://evil.example|Hernandez>", "R", "R"),),
            journal="<https://evil.example|Nature>",
            journal_iso="<https://evil.example|Nat>",
            doi="10.1002/(SICI)1097-4636(199812)43:4<387::AID-JBM5>3.0.CO;2-B",
        ),
        record(
            pmids[2],
            entry_date=entry_date,
            title="IL-2 " + " ".join(MARKUP),
            abstract=(("<b>METHODS</b>", "METHODS", " ".join(MARKUP * 3)), ("", "", "&" * 500)),
            authors=(Author("O'Brien & <b>Sons</b>", "A&amp;B", "AB"),),
            journal="Clinical & Experimental Immunology <i>",
            journal_iso="Clin Exp Immunol & <u>",
        ),
        record(
            pmids[3],
            entry_date=entry_date,
            title="IL-2 " + " ".join(INVISIBLE),
            abstract=(("", "", " ".join(INVISIBLE * 20)),),
            authors=(Author("\u202eknaB\u202c", "\u200b", "\ufeff"),),
            journal="\u2066J\u2069 Immunol\u200d",
        ),
        record(
            pmids[4],
            entry_date=entry_date,
            title="IL-2 " + " ".join(UNUSUAL),
            abstract=(("", "", " ".join(UNUSUAL * 30)),),
            authors=tuple(Author(f"{UNUSUAL[n % len(UNUSUAL)][:12]}", "名", "名") for n in range(12)),
            journal="免疫学杂志 " + UNUSUAL[0],
            journal_iso=UNUSUAL[4][:8],
        ),
        # Very long everything: a 10 KB title, a 100 KB abstract in 60 labelled sections, 300 authors, 3 KB journal.
        record(
            pmids[5],
            entry_date=entry_date,
            title=("IL-2 mutein " + everything + " ") * 10,
            abstract=tuple(
                (
                    f"SECTION {n} {MENTIONS[n % len(MENTIONS)]}",
                    "RESULTS",
                    "".join(_sentence(n * 7 + k) for k in range(14)),
                )
                for n in range(60)
            ),
            authors=tuple(
                Author(f"Author{n} " + "ʼ" * 40 + MENTIONS[n % len(MENTIONS)], "Fore" * 30, "AB") for n in range(300)
            ),
            journal=("Journal of " + everything + " ") * 3,
            journal_iso="J " + everything[:500],
            keywords=tuple(EVERYTHING),
        ),
        # Nothing readable left once invisible characters are dropped: the post must still be valid.
        record(
            pmids[6],
            entry_date=entry_date,
            title="\u200b\u202e\ufeff",
            abstract=(),
            authors=(),
            journal="",
            journal_iso="",
            doi="",
        ),
        # Every hostility at once in an ordinary-looking paper, the way a single bad deposit would look.
        record(
            pmids[7],
            entry_date=entry_date,
            title="Low-dose IL-2 in lupus " + everything,
            abstract=(("", "", everything),),
            authors=(Author(everything[:200], everything[200:260], "X"),),
            journal=everything[:300],
            journal_iso=everything[:80],
        ),
    ]


def hostile_words() -> list[str]:
    """What a researcher might paste into /il2 search after reading one of these posts."""
    return [
        "<!channel>",
        "mutein <@U0HUMAN01>",
        '"<https://evil.example|Nature>"',
        "\u202eknaB",
        "白细胞介素",
        "𝕀𝕃",
        "&amp;lt;",
        "IL-2 " + "🧬" * 50,
    ]


def unparseable_record(pmid: str, entry_date: date) -> Record:
    """A record whose title holds an ESC character: not allowed in XML 1.0, so no parser reads the answer."""
    return record(pmid, entry_date=entry_date, title="IL-2 mutein \x1b[31m in red")
