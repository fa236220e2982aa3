"""Records from outside read field by field: a field of the wrong type reads as absent and is noted, so an
odd record is read as far as it goes instead of failing what reads it (the sources, the follow-up check)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class Fields:
    """One record from outside, read field by field. A field of an unexpected type (text where a list
    belongs, a list or an object where text belongs, a boolean for a number) reads as absent and is
    noted in ``odd``, so that an odd record is read as far as it goes, with one warning naming what was
    odd, instead of failing the poll. ``null`` is simply absent."""

    def __init__(self, data: object, *, odd: list[str] | None = None, at: str = ""):
        self.odd: list[str] = [] if odd is None else odd
        self.at = at
        self.data: Mapping[str, Any] = data if isinstance(data, dict) else {}
        if data is not None and not isinstance(data, dict):
            self.odd.append(at.rstrip(".") or "the record")

    def _note(self, name: str) -> None:
        if f"{self.at}{name}" not in self.odd:
            self.odd.append(f"{self.at}{name}")

    def value(self, name: str) -> Any:
        return self.data.get(name)

    def text(self, name: str) -> str:
        """A text field (a number is read as its text); "" when absent or of another type."""
        value = self.data.get(name)
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        self._note(name)
        return ""

    def obj(self, name: str) -> Fields:
        """A nested object; an empty one when absent or of another type."""
        value = self.data.get(name)
        if value is not None and not isinstance(value, dict):
            self._note(name)
            value = None
        return Fields(value or {}, odd=self.odd, at=f"{self.at}{name}.")

    def items(self, name: str) -> list[Any]:
        """A list field as it came; [] when absent or not a list."""
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self._note(name)
            return []
        return value

    def objs(self, name: str) -> list[Fields]:
        """The objects of a list field; items that are no objects are left out and noted."""
        listed = self.items(name)
        if any(not isinstance(item, dict) for item in listed):
            self._note(name)
        return [Fields(item, odd=self.odd, at=f"{self.at}{name}.") for item in listed if isinstance(item, dict)]

    def texts(self, name: str) -> list[str]:
        """The texts of a list field; items that are no text are left out and noted."""
        found = []
        for item in self.items(name):
            if isinstance(item, str) or (isinstance(item, int | float) and not isinstance(item, bool)):
                found.append(str(item))
            else:
                self._note(name)
        return found
