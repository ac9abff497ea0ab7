"""In-memory adapters of every port (``campaigns.ports``), with the same semantics as the
real ones (tests/contract runs the same tests over both).

Unit tests use these (fakes with lists you can assert on), not mocks of boto3.
"""

from campaigns.memory.bulk import MemoryBulk
from campaigns.memory.clock import ManualClock
from campaigns.memory.guard import MemoryCapGuard
from campaigns.memory.queue import MemoryQueue
from campaigns.memory.ratelimit import Unlimited
from campaigns.memory.sender import FakeSender, Outcome
from campaigns.memory.store import MemoryStore

__all__ = [
    "FakeSender",
    "ManualClock",
    "MemoryBulk",
    "MemoryCapGuard",
    "MemoryQueue",
    "MemoryStore",
    "Outcome",
    "Unlimited",
]
