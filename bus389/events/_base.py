"""The base of every bus389 model: frozen, unknown fields refused, all text NFC; Avro type markers."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from bus389.agencies import Agency

__all__ = ["ENUM_DEFAULTS", "AvroEnum", "AvroType", "BusModel", "nfc_deep"]


@dataclass(frozen=True)
class AvroType:
    """Marks a field with its Avro type where Python cannot tell (int or long, uuid, timestamp, date)."""

    name: str


class AvroEnum(StrEnum):
    """An Avro enum: values are the symbols, in the schema's order; input matches case-insensitively."""

    @classmethod
    def _missing_(cls, value: object) -> AvroEnum | None:
        if isinstance(value, str):
            wanted = value.strip().upper()
            for member in cls:
                if member.value.upper() == wanted:
                    return member
        return None


ENUM_DEFAULTS: dict[type[StrEnum], StrEnum] = {Agency: Agency.OTHER_MEMBERS}
"""Each Avro enum's ``default`` symbol (what a reader makes of a symbol it does not know)."""


_NFC_DONE = "bus389.nfc_done"
"""Validation context key: the input is NFC already (nested models need not walk their part again)."""


def nfc_deep(value: Any) -> Any:
    """``value`` with every string in it (keys too) in Unicode NFC; other values as they are."""
    if isinstance(value, str):
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {nfc_deep(k): nfc_deep(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [nfc_deep(v) for v in value]
    return value


class BusModel(BaseModel):
    """Frozen, ``extra="forbid"`` (an unknown field is an error naming it), every string NFC-normalised.

    NFC is applied to the input before any other rule, so Vietnamese text typed in decomposed form
    (e.g. from macOS) is stored, encoded and compared in one canonical byte form.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=False)

    @model_validator(mode="before")
    @classmethod
    def _nfc(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(info.context, dict) and info.context.get(_NFC_DONE):
            return data
        return nfc_deep(data) if isinstance(data, dict) else data

    @classmethod
    def validate_nfc(cls, data: Any) -> Self:
        """``model_validate`` with the input's text made NFC in one walk, at the top.

        Plain ``model_validate`` gives the same model, but each nested model walks its own part of the
        input again (an event's record was walked ≈ 25 times); this is the hot paths' way in.
        """
        normalised = nfc_deep(data) if isinstance(data, dict) else data
        return cls.model_validate(normalised, context={_NFC_DONE: True})
