"""The batch queue port: ``MemoryQueue`` and ``SqsQueue`` (on moto) hold and hand out messages
the same way: visibility, receipts, receive counts and depth."""

from __future__ import annotations

from tests.contract.conftest import Queue


def _receive_all(queue: Queue, visibility_timeout_s: int = 600) -> list[str]:
    bodies: list[str] = []
    while batch := queue.receive(10, 0, visibility_timeout_s):
        bodies.extend(m.body for m in batch)
    return bodies


def test_sent_messages_are_received_once_while_invisible(queue: Queue) -> None:
    assert queue.send([f"body-{n}" for n in range(12)]) == 12

    first = queue.receive(10, 0, 600)

    assert len(first) == 10
    assert {m.receive_count for m in first} == {1}
    assert len({m.receipt_handle for m in first}) == 10
    rest = _receive_all(queue)
    assert sorted([m.body for m in first] + rest) == sorted(f"body-{n}" for n in range(12))
    assert queue.receive(10, 0) == []


def test_depth_counts_visible_and_in_flight_messages(queue: Queue) -> None:
    queue.send(["a", "b", "c"])
    assert queue.depth() == (3, 0)

    queue.receive(1, 0, 600)

    assert queue.depth() == (2, 1)


def test_a_deleted_message_is_gone(queue: Queue) -> None:
    queue.send(["only"])
    [message] = queue.receive(10, 0, 600)

    assert queue.delete([message.receipt_handle]) == []

    queue.change_visibility([message.receipt_handle], 0)
    assert queue.receive(10, 0) == []
    assert queue.depth() == (0, 0)


def test_a_message_made_visible_again_comes_back_with_its_receive_count(queue: Queue) -> None:
    queue.send(["again"])
    [first] = queue.receive(10, 0, 600)

    assert queue.change_visibility([first.receipt_handle], 0) == []
    [second] = queue.receive(10, 0, 600)

    assert (second.message_id, second.body) == (first.message_id, "again")
    assert second.receive_count == 2
    assert queue.depth() == (0, 1)


def test_an_empty_queue_receives_nothing_and_has_no_depth(queue: Queue) -> None:
    assert queue.receive(10, 0) == []
    assert queue.depth() == (0, 0)
