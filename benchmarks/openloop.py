"""The C open-loop generator (benchmarks/openloop.c): compiled with gcc on first use, run per phase.

The asyncio generator in loadgen.py spends ~150-250 µs of CPU per request: at 3,000+ callbacks/s on
a 2-core machine it falls behind its own schedule and takes the cores the server needs, so an
overload phase measured the generator (benchmarks/RESULTS.md, issue 16). The C one sends the same
pre-built requests on the same schedule, with the same pool semantics and latency from the due time.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from common import LoadResult

SOURCE = Path(__file__).resolve().parent / "openloop.c"
GCC_MISSING = ("the C open-loop generator needs gcc (Debian: apt-get install gcc); without it the "
               "Python generator runs, which cannot produce much over ~3,000 requests/s on 2 cores")


class Unavailable(RuntimeError):
    """gcc is missing, or the source does not compile."""


def binary() -> Path:
    """The compiled generator, built on first use into the temporary directory, keyed by the
    source's hash so that an edited source is rebuilt and two checkouts never share a stale one."""
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = Path(tempfile.gettempdir()) / f"imhook-openloop-{digest}"
    if target.exists():
        return target
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise Unavailable(GCC_MISSING)
    partial = target.with_suffix(f".{id(target)}.tmp")
    built = subprocess.run([gcc, "-O2", "-o", str(partial), str(SOURCE)], capture_output=True, text=True)
    if built.returncode != 0:
        raise Unavailable(f"gcc could not build {SOURCE}:\n{built.stderr}")
    partial.replace(target)  # atomic: a concurrent benchmark sees the whole binary or none
    return target


def available() -> bool:
    try:
        binary()
    except Unavailable:
        return False
    return True


def run(host: str, port: int, raws: list[bytes], *, rate: float, seconds: float, max_connections: int,
        timeout: float) -> LoadResult:
    """Send the raw requests (cycled) at `rate` for `seconds`; the figures as a LoadResult."""
    program = binary()
    with tempfile.NamedTemporaryFile(prefix="imhook-openloop-", suffix=".dat") as data:
        for raw in raws:
            data.write(b"%d\n" % len(raw) + raw)
        data.flush()
        out = subprocess.run([str(program), data.name, host, str(port), f"{rate:.3f}", f"{seconds:g}",
                              str(max_connections), f"{timeout:g}"],
                             capture_output=True, text=True, timeout=seconds + timeout + 60)
    match = re.search(r"^OPENLOOP (\{.*\})$", out.stdout, re.MULTILINE)
    if out.returncode != 0 or match is None:
        raise RuntimeError(f"openloop failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    r = json.loads(match.group(1))
    return LoadResult("c-open", r["peak_connections"], r["seconds"], r["answered"], r["non_2xx"],
                      r["socket_errors"], r["timeouts"], r["p50"], r["p99"], r["p999"], r["max"],
                      target_rate=rate, over_2s=r["over_2s"], generator_lag_ms=r["lag_max_ms"],
                      peak_connections=r["peak_connections"], scheduled=r["scheduled"],
                      send_seconds=r["send_seconds"], late_sends=r["lag_over_10ms"],
                      generator_cpu_s=r["cpu_seconds"])
