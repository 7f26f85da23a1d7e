"""receiver/heap.py: each worker hands its free C heap back to the system now and then."""

from __future__ import annotations

import platform
import threading

import pytest

from receiver import heap


def test_the_trim_runs_on_its_own_thread_every_so_often(monkeypatch):
    calls = []
    ran = threading.Event()

    def fake_trim(pad):
        calls.append(pad)
        if len(calls) == 3:
            ran.set()
        return 1

    monkeypatch.setattr(heap, "malloc_trim", lambda: fake_trim)
    thread = heap.start_trimming(every=0.01)
    try:
        assert thread is not None and thread.daemon and thread.name == "imhook-malloc-trim"
        assert ran.wait(2), calls
        assert set(calls) == {0}  # 0: keep no padding at the top, release every whole free page
    finally:
        thread.stop.set()
        thread.join(2)


def test_zero_seconds_or_no_glibc_means_no_thread(monkeypatch):
    assert heap.start_trimming(every=0) is None
    monkeypatch.setattr(heap, "malloc_trim", lambda: None)
    assert heap.start_trimming(every=60) is None


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_has_the_call_and_it_returns_memory():
    trim = heap.malloc_trim()
    assert trim is not None
    blocks = [bytearray(4096 + i % 512) for i in range(20_000)]  # ~90 MB of C heap, then mostly freed
    del blocks[::2]
    assert trim(0) == 1  # 1: whole free pages between the live blocks were given back
    del blocks


@pytest.mark.parametrize("threshold, expected", [(10_000, 10_000), (0, None)])
def test_settle_freezes_the_app_and_sets_the_young_threshold(threshold, expected):
    import gc

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        heap.settle(threshold)
        assert gc.get_freeze_count() > 0  # the app's objects are out of the collector's sight
        assert gc.get_threshold() == ((expected or 700), 10, 10)
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
