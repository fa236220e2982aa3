"""The citation sources il2watch asks: PubMed, NIH iCite, Europe PMC and OpenAlex, one module each behind
the interface in ``il2watch.sources.base``. ``make_sources`` builds the ones the settings enable, each on
its own ``il2watch.transport.Host`` (its base URL, its rate, a User-Agent naming il2watch and the lab's
contact address). Adding a source means one module here, its entry in ``model.SOURCES`` and below.
"""

from __future__ import annotations

from typing import Any

from il2watch.eutils import Eutils
from il2watch.sources import europepmc, icite, openalex
from il2watch.sources.base import Finding, Found, Given, Request, Source, SourceError, SourceRecord
from il2watch.sources.pubmed import PubMed
from il2watch.transport import HOMEPAGE, host_from_settings


def user_agent(settings: Any) -> str:
    """il2watch and, when set, the lab's contact address (NCBI_EMAIL), as the open indexes ask."""
    contact = f"; mailto:{settings.ncbi_email}" if settings.ncbi_email else ""
    return f"il2watch (+{HOMEPAGE}{contact})"


def make_source(settings: Any, name: str, eutils: Eutils) -> Source:
    """One source as the settings describe it."""
    if name == "pubmed":
        return PubMed(eutils, similar_max_rank=settings.similar_max_rank, similar_min_score=settings.similar_min_score)
    headers = {"User-Agent": user_agent(settings)}
    if name == "icite":
        host = host_from_settings(
            settings,
            name=icite.LABEL,
            base_url=settings.icite_url,
            rate=icite.RATE,
            headers=headers,
            hint="check the network, or IL2WATCH_ICITE_URL",
        )
        return icite.Icite(host)
    if name == "europepmc":
        host = host_from_settings(
            settings,
            name=europepmc.LABEL,
            base_url=settings.europepmc_url,
            rate=europepmc.RATE,
            headers=headers,
            hint="check the network, or IL2WATCH_EUROPEPMC_URL",
        )
        return europepmc.EuropePmc(host)
    if name == "openalex":
        host = host_from_settings(
            settings,
            name=openalex.LABEL,
            base_url=settings.openalex_url,
            rate=openalex.RATE,
            headers=headers,
            hint="check the network, or IL2WATCH_OPENALEX_URL",
        )
        return openalex.OpenAlex(host, api_key=settings.openalex_api_key, mailto=settings.ncbi_email)
    raise SourceError(f"unknown source {name!r}")


def make_sources(settings: Any, eutils: Eutils) -> list[Source]:
    """Every source the settings enable, in the order they are listed."""
    return [make_source(settings, name, eutils) for name in settings.enabled_sources]


__all__ = [
    "Finding",
    "Found",
    "Given",
    "Request",
    "Source",
    "SourceError",
    "SourceRecord",
    "make_source",
    "make_sources",
]
