"""Smoke runs of the in-process benchmarks (parts.py, wsgi_cpu.py, gc_time.py, store_pages.py, rate_limit_store.py): they build the app from a config,
send a small mix through it and print their figures. The figures are not judged here."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT


def run_script(*args: str) -> str:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / args[0]), *args[1:]],
                         cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.parametrize("config", ["default", "production"])
def test_wsgi_cpu_prints_the_cpu_per_request(config):
    output = run_script("wsgi_cpu.py", "--config", config, "--callbacks", "100")
    figure = re.search(r"config (\w+) \{\}: ([\d.]+) us of process CPU per request", output)
    assert figure and figure.group(1) == config and float(figure.group(2)) > 0, output


def test_wsgi_cpu_times_the_tree_it_is_given(tmp_path):
    # Another checkout's code (here: a copy of this one) is what gets imported and timed.
    import shutil

    for part in ("receiver", "rules"):
        shutil.copytree(ROOT / part, tmp_path / part)
    output = run_script("wsgi_cpu.py", "--config", "default", "--callbacks", "50", "--tree", str(tmp_path))
    assert output.startswith(f"{tmp_path}: config default"), output


def test_parts_prints_every_part():
    output = run_script("parts.py", "--config", "default", "--callbacks", "100")
    for label in ("WSGI app, end to end", "Receiver.handle", "parse:", "Chain.decide, as served",
                  "render the reply", "observer receiver.recording.writer.Recorder"):
        assert re.search(rf"{re.escape(label)}.*\s[\d.]+$", output, re.MULTILINE), (label, output)


def test_wsgi_cpu_times_the_bare_app_over_the_same_mix():
    output = run_script("wsgi_cpu.py", "--bare", "--callbacks", "100", "--passes", "2")
    figure = re.search(r"bare Flask app \(benchmarks/bare_app.py\): ([\d.]+) us of process CPU per request "
                       r"\(mean of 2 passes; least ([\d.]+)\)", output)
    assert figure and 0 < float(figure.group(2)) <= float(figure.group(1)), output


def test_wsgi_cpu_times_the_shed_path_with_every_callback_shed():
    output = run_script("wsgi_cpu.py", "--shed", "--callbacks", "100", "--passes", "2")
    figure = re.search(r"config production \{\}, shed: (\d+) of (\d+) callbacks sent: ([\d.]+) us of process CPU",
                       output)
    assert figure and figure.group(1) == figure.group(2) == "300" and float(figure.group(3)) > 0, output


def test_store_pages_prints_every_variant_and_the_shipped_settings_write_less():
    output = run_script("store_pages.py", "--smoke")
    written = {}
    for name in ("shipped (16 KB pages, batch 1000", "4 KB pages (before issue 16 step 17)",
                 "before: SQLite's defaults, batch 200", "SQLite's defaults, batch 1000",
                 "shipped, batch 200", "schema 3: the user index kept per row", "shipped, without any user index"):
        line = re.search(rf"RESULT {re.escape(name)}.* per row: written +([\d,]+) B in [\d.]+ calls, "
                         rf"read +[\d,]+ B in [\d.]+ calls; CPU +[\d.]+ us", output)
        assert line, (name, output)
        written[name] = int(line.group(1).replace(",", ""))
    # Counted bytes, not timings: the store's cache and checkpoint settings and 1000-row batches
    # write less per row than SQLite's defaults with 200-row batches did (issue 16, step 7).
    assert written["shipped (16 KB pages, batch 1000"] < written["before: SQLite's defaults, batch 200"], output


def test_store_pages_prices_each_index_by_dropping_it():
    output = run_script("store_pages.py", "--smoke", "--each-index")
    written = dict((name, int(count.replace(",", ""))) for name, count in re.findall(
        r"RESULT (.+?)\s+per row: written +([\d,]+) B in", output))
    indexes = ("recordings_time", "recordings_command", "recordings_outcome_time", "recordings_rule_time",
               "recordings_key")
    assert set(written) == {"shipped", "shipped, again", "recordings_rule_time only where rule != ''",
                            *(f"without {index}" for index in indexes)}, output
    # Counted bytes: an index dropped is one B-tree fewer to write for each row.
    assert all(written[f"without {index}"] < written["shipped"] for index in indexes), output
    assert written["shipped"] == written["shipped, again"], output  # the same file, the same rows


@pytest.mark.parametrize("threshold, young", [("", 10_000), ("700,10,10", 700)])
def test_gc_time_prints_the_collections_per_callback_at_the_thresholds_in_force(threshold, young):
    # Without --threshold: what a worker runs with (receiver/heap.settle, called as post_worker_init does).
    output = run_script("gc_time.py", "--callbacks", "100", *(("--threshold", threshold) if threshold else ()))
    figure = re.search(r"thresholds \((\d+), \d+, \d+\): ([\d.]+) us of process CPU per callback; "
                       r"collections per callback by generation \[[\d., ]+\]; us in them per callback "
                       r"\[[\d., ]+\] \(sum ([\d.]+)\)", output)
    assert figure and int(figure.group(1)) == young and float(figure.group(2)) > 0, output


def test_rate_limit_store_prints_both_loads():
    output = run_script("rate_limit_store.py", "--hits", "200", "--rounds", "1")
    for load, hits in (("steady", 200), ("flood", 20)):
        figure = re.search(rf": {load}: ([\d.]+)-([\d.]+) us of CPU per hit \(1 rounds of {hits} hits\)", output)
        assert figure and 0 < float(figure.group(1)) <= float(figure.group(2)), output
