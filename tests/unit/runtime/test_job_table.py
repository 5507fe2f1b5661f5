"""The job table's bounds: count, bytes, TTL and leases, on an injected clock."""

from __future__ import annotations

from kubellm_runtime.jobs.table import Done, JobTable, Pending


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def table(clock: Clock, entries: int = 3, size: int = 1024, ttl: float = 60.0) -> JobTable:
    return JobTable(max_entries=entries, max_bytes=size, ttl_s=ttl, clock=clock)


def finished(t: JobTable, job_id: str, result: str = "r") -> None:
    assert t.claim(job_id, "/generate", f"fp-{job_id}", lease_s=10) is None
    assert t.finish(job_id, f"fp-{job_id}", result)


def test_a_claim_holds_the_id_and_a_finish_stores_the_result() -> None:
    t = table(Clock())
    assert t.claim("a", "/generate", "fp", lease_s=10) is None
    assert t.claim("a", "/generate", "other", lease_s=10) == Pending("/generate", "fp")
    assert t.finish("a", "fp", "text")
    assert t.peek("a") == Done("/generate", "fp", "text")


def test_the_oldest_finished_entries_leave_past_the_count_bound() -> None:
    t = table(Clock(), entries=3)
    for job_id in "abcd":
        finished(t, job_id)
    assert t.peek("a") is None
    assert all(t.peek(j) is not None for j in "bcd")


def test_the_oldest_leave_past_the_byte_bound_and_a_too_big_result_is_not_kept() -> None:
    t = table(Clock(), entries=100, size=1024)
    finished(t, "a", "x" * 600)
    finished(t, "b", "y" * 600)
    assert t.peek("a") is None
    assert t.peek("b") is not None
    assert t.bytes == 600
    assert t.claim("big", "/generate", "fp", lease_s=10) is None
    assert not t.finish("big", "fp", "z" * 2000)
    assert t.peek("big") is None  # a repeat generates again


def test_results_expire_after_the_ttl() -> None:
    clock = Clock()
    t = table(clock, ttl=60)
    finished(t, "a")
    clock.now += 59
    assert t.peek("a") is not None
    clock.now += 2
    assert t.peek("a") is None
    assert t.bytes == 0


def test_a_pending_entry_does_not_stall_eviction_of_finished_ones() -> None:
    t = table(Clock(), entries=2)
    assert t.claim("slow", "/generate", "fp", lease_s=10) is None
    for job_id in "abc":
        finished(t, job_id)
    assert t.peek("slow") == Pending("/generate", "fp")
    assert t.peek("a") is None
    assert t.peek("c") is not None


def test_a_lease_whose_owner_vanished_frees_the_id() -> None:
    clock = Clock()
    t = table(clock)
    assert t.claim("a", "/generate", "fp", lease_s=10) is None
    clock.now += 11
    assert t.claim("a", "/generate", "fp2", lease_s=10) is None  # a new owner
    assert not t.finish("a", "fp", "late")  # the old owner's result is not taken


def test_a_release_frees_the_id_for_a_retry() -> None:
    t = table(Clock())
    assert t.claim("a", "/generate", "fp", lease_s=10) is None
    t.release("a", "fp")
    assert t.peek("a") is None
