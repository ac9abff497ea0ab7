"""The in-memory ``campaigns.ports.RecipientBulk``, over a ``MemoryStore``'s dicts."""

from __future__ import annotations

from collections.abc import Sequence

from campaigns.domain.models import Recipient, RecipientStatus, TemplateParam
from campaigns.memory.store import MemoryStore


class MemoryBulk:
    """Populate's batched reads and writes; shares the store's recipients and suppressions."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store

    def known(self, campaign_id: str, phones: Sequence[str]) -> tuple[set[str], set[str]]:
        existing = {p for p in phones if (campaign_id, p) in self._store.recipients}
        suppressed = {p for p in phones if p in self._store.suppressed}
        return existing, suppressed

    def write_pending(
        self, campaign_id: str, rows: Sequence[tuple[str, tuple[TemplateParam, ...]]]
    ) -> int:
        """Put new PENDING recipients (an existing one is overwritten, as a PutItem would)."""
        for phone, params in rows:
            self._store.recipients[(campaign_id, phone)] = Recipient(
                campaign_id, phone, RecipientStatus.PENDING, params=params
            )
        self._store.writes += len(rows)
        return len(rows)
