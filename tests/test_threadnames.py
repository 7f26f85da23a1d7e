"""imhook's threads carry their names into the OS, where `top -H` and benchmarks/served_threads.py read them."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from receiver.threadnames import OS_NAME_LIMIT, name_this_thread

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread names in /proc are Linux's")


def os_name(native_id: int) -> str:
    return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()


@pytest.mark.parametrize("python_name, given, expected", [
    ("imhook-recorder", None, "imhook-recorder"),  # the Python name by default
    ("imhook-request_0", None, "imhook-request_"),  # cut to what Linux keeps
    ("Thread-9", "imhook-metrics", "imhook-metrics"),  # or the name given
    ("Thread-9", "naïve", "na?ve"),  # ASCII only
])
def test_a_thread_gets_its_name_in_the_os(python_name, given, expected):
    seen = {}

    def run():
        name_this_thread(given)
        seen["name"] = os_name(threading.get_native_id())

    thread = threading.Thread(target=run, name=python_name)
    thread.start()
    thread.join()
    assert seen["name"] == expected
    assert len(seen["name"]) <= OS_NAME_LIMIT


def test_the_recorders_writer_is_named(tmp_path):
    from receiver.recording.writer import Recorder

    recorder = Recorder(tmp_path / "r.sqlite")
    try:
        deadline = time.monotonic() + 5  # the thread names itself as it starts
        while os_name(recorder._thread.native_id) != "imhook-recorder" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os_name(recorder._thread.native_id) == "imhook-recorder"
    finally:
        recorder.close()
