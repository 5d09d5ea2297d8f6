"""The publisher's cursor, fed inputs directly: exact action sequences, no broker, no threads, no clock."""

from __future__ import annotations

from edge.journal.cursor import Load, Publish, PublishCursor, SaveCursor


def events(lo: int, hi: int) -> list[tuple[int, str]]:
    return [(s, f"e{s}") for s in range(lo, hi + 1)]


def test_connect_loads_from_the_cursor_and_publishes_in_order() -> None:
    core = PublishCursor(cursor=3, head=7, window=10)
    assert core.backlog == 4
    assert core.connected() == [Load(3, 10)]
    assert core.loaded(events(4, 7), through=7) == [Publish(s, f"e{s}") for s in range(4, 8)]
    assert core.acked(5) == []  # 4 is not acknowledged yet: the cursor stays
    assert core.cursor == 3
    assert core.acked(4) == []  # cursor 5, 6 and 7 still in flight: not saved yet (save_every 200)
    assert core.cursor == 5
    assert core.acked(7) == [] and core.acked(6) == [SaveCursor(7)]  # idle: saved
    assert core.backlog == 0


def test_nothing_happens_while_disconnected_and_the_journal_grows_on_disk_only() -> None:
    core = PublishCursor(cursor=0, head=0, window=5)
    for head in range(1, 3001):
        assert core.journal_head(head) == []
    assert core.backlog == 3000 and not core.inflight  # nothing held in memory
    assert core.connected() == [Load(0, 5)]
    out = core.loaded(events(1, 5), through=5)
    assert out == [Publish(s, f"e{s}") for s in range(1, 6)]  # the window is full: no Load
    out = core.acked(1)
    assert out == [Load(5, 1)]


def test_a_lost_connection_resends_everything_unacknowledged_from_the_cursor() -> None:
    core = PublishCursor(cursor=0, head=4, window=10)
    core.connected()
    core.loaded(events(1, 4), through=4)
    core.acked(1)
    core.acked(3)  # 2 lost with the connection
    assert core.disconnected() == [SaveCursor(1)]
    assert core.acked(2) == []  # a late PUBACK of the dead session changes nothing
    assert core.connected() == [Load(1, 10)]
    assert core.loaded(events(2, 4), through=4) == [Publish(2, "e2"), Publish(3, "e3"), Publish(4, "e4")]


def test_gaps_in_the_journal_are_stepped_over() -> None:
    core = PublishCursor(cursor=0, head=10, window=10)
    core.connected()
    out = core.loaded([(2, "e2"), (9, "e9")], through=10)
    assert out == [Publish(2, "e2"), Publish(9, "e9")]
    assert core.acked(2) == [] and core.cursor == 8
    assert core.acked(9) == [SaveCursor(10)]


def test_the_cursor_is_saved_every_n_acknowledgements_under_load() -> None:
    core = PublishCursor(cursor=0, head=1000, window=50, save_every=20)
    out = core.connected()
    saves: list[int] = []
    sent = 0
    while out:
        action = out.pop(0)
        if isinstance(action, Load):
            batch = events(action.after + 1, min(action.after + action.limit, 1000))
            out += core.loaded(batch, through=batch[-1][0] if batch else 1000)
        elif isinstance(action, Publish):
            sent += 1
            out += core.acked(action.sequence)
        elif isinstance(action, SaveCursor):
            saves.append(action.sequence)
    assert sent == 1000 and core.cursor == 1000 and saves[-1] == 1000
    assert saves == list(range(20, 1001, 20))  # every 20 acknowledgements, and the last one
