"""The end line's ``lost_workers`` as the reports read it: one sentence per entry, a malformed one included."""

from __future__ import annotations

from peakload.core.records import LOST_WORKERS, lost_worker_lines


def test_each_lost_worker_is_one_sentence_naming_it_and_what_was_kept() -> None:
    end = {
        LOST_WORKERS: [
            {"worker": "host-a_1f", "index": 0, "at_s": 5.146, "kept_s": 5.055, "requests_kept": 40},
            {"worker": "host-b_2e", "index": None, "at_s": 1.0, "kept_s": None, "requests_kept": 0},
        ]
    }
    first, second = lost_worker_lines(end)
    assert first.startswith("worker host-a_1f (index 0) lost 5.1 s into the test")
    assert "its intervals up to 5.1 s are kept (40 requests)" in first and "not sent or not counted" in first
    assert second.startswith("worker host-b_2e lost 1.0 s into the test") and "it had reported nothing" in second


def test_no_key_is_no_lost_worker_and_a_malformed_entry_still_counts_as_one() -> None:
    assert lost_worker_lines(None) == [] and lost_worker_lines({"reason": "completed"}) == []
    bad = [{"index": 0, "at_s": 1.0}, {"worker": 7, "at_s": 1.0}, {"worker": "w", "at_s": "soon"}, {"worker": "w", "at_s": True}, "w"]
    lines = lost_worker_lines({LOST_WORKERS: [*bad, {"worker": "w", "at_s": 2.0}]})
    assert len(lines) == len(bad) + 1  # a run that says it lost a worker is never read as complete
    assert all("unreadable" in line for line in lines[:-1]) and lines[-1].startswith("worker w lost 2.0 s")
    assert lost_worker_lines({LOST_WORKERS: "host-a"}) == [lines[0]]
