"""What the emulator records of a send it accepted; its control client reads the same record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class AcceptedMessage:
    """One send the emulator accepted (answered 200, or accepted before losing the answer)."""

    wamid: str
    to: str  # digits only, no '+'
    phone_number_id: str
    template_name: str
    language: str
    components: list[dict[str, Any]]
    biz_opaque_callback_data: str | None
    accepted_at: float  # time.time()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AcceptedMessage:
        callback = d.get("biz_opaque_callback_data")
        return cls(
            wamid=str(d["wamid"]),
            to=str(d["to"]),
            phone_number_id=str(d["phone_number_id"]),
            template_name=str(d["template_name"]),
            language=str(d["language"]),
            components=list(d["components"]),
            biz_opaque_callback_data=None if callback is None else str(callback),
            accepted_at=float(d["accepted_at"]),
        )
