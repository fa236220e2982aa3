"""The citation sources il2watch asks: PubMed, NIH iCite, Europe PMC and OpenAlex, one module each behind
the interface in ``il2watch.sources.base``. Each module declares its ``KIND`` (its name, the settings it
reads, how it is built from them); ``KINDS`` is every module here that has one, so ``make_source`` and
``doctor`` need no line per source. A new source also needs its label in ``model.SOURCES`` (model cannot
import this package: the sources import model) and its base URL and refresh options in ``config.Settings``
(settings are declared once, there); ``tests/test_sources.py`` checks that these agree.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from il2watch.eutils import Eutils
from il2watch.model import SOURCES
from il2watch.sources.base import (
    Finding,
    Found,
    Given,
    Kind,
    Request,
    Source,
    SourceError,
    SourceRecord,
    user_agent,
)


def _kinds() -> dict[str, Kind]:
    """Every source module's KIND, in model.SOURCES's order."""
    found: dict[str, Kind] = {}
    for module in pkgutil.iter_modules(__path__):
        kind = getattr(importlib.import_module(f"{__name__}.{module.name}"), "KIND", None)
        if isinstance(kind, Kind):
            found[kind.name] = kind
    order = list(SOURCES)
    return dict(sorted(found.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


KINDS = _kinds()


def make_source(settings: Any, name: str, eutils: Eutils) -> Source:
    """One source as the settings describe it."""
    kind = KINDS.get(name)
    if kind is None:
        raise SourceError(f"unknown source {name!r}")
    return kind.build(settings, eutils)


def make_sources(settings: Any, eutils: Eutils) -> list[Source]:
    """Every source the settings enable, in the order they are listed."""
    return [make_source(settings, name, eutils) for name in settings.enabled_sources]


__all__ = [
    "KINDS",
    "Finding",
    "Found",
    "Given",
    "Kind",
    "Request",
    "Source",
    "SourceError",
    "SourceRecord",
    "make_source",
    "make_sources",
    "user_agent",
]
