"""How benchmarks/http.py shows its figures: one line per phase, the summary, and Markdown."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import loadgen
from common import WORKER_CLASS, LoadResult

# issue 16's targets, paired with the bare app on the same gunicorn settings
TARGET_RATIO = 0.6  # (c)'s throughput, ÷ the bare app's
TARGET_CPU_RATIO = 1.6  # (c)'s server CPU per request, ÷ the bare app's
TARGET_DEFAULT_CPU_RATIO = 1.35  # (b)'s
TARGET_P99_MS = 25.0


@dataclass
class Run:
    """Everything measured on one server."""

    name: str
    label: str
    checked: int = 0
    wrong: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    phases: dict[str, LoadResult] = field(default_factory=dict)
    rounds: list[LoadResult] = field(default_factory=list)  # the alternating closed-loop runs
    hop: tuple[float, float] = (0.0, 0.0)  # µs per decision: rules on a thread pool, rules inline
    shed: int | None = None  # requests the worker answered without the app, over the whole run (its log)
    shed_overload: int | None = None  # of them, in the overload phase (from /metrics; None: no metrics)
    # ... in the closed-loop phases ("c16 rounds", "c64"): shedding there would skew the CPU figures
    shed_closed: dict[str, int] = field(default_factory=dict)

    @property
    def saturation(self) -> float:
        closed = [r.rps for k, r in self.phases.items() if k.startswith("c")]
        return max(closed) if closed else 0.0



def report(run: Run, phase: str) -> None:
    r = run.phases[phase]
    rate = f" target {r.target_rate:,.0f}/s, peak conns {r.peak_connections}, gen lag {r.generator_lag_ms:.0f} ms," \
        if r.generator.endswith("-open") else ""
    if r.generator == "c-open":  # the C generator's own accuracy: its schedule against the target
        rate += (f" scheduled {r.scheduled:,} in {r.send_seconds:.1f} s, {r.late_sends} sent >10 ms late, "
                 f"generator CPU {r.generator_cpu_s:.2f} s,")
    shed = ""
    if phase == "overload" and run.shed_overload is not None:
        sent = r.scheduled  # the schedule's total, answered or not
        shed = f"; shed {run.shed_overload:,} ({100 * run.shed_overload / max(sent, 1):.0f} % of {sent:,})"
    print(f"  RESULT {run.name:<10} {phase:<8} {r.generator:<13} c={r.connections:<4} {r.rps:>8,.0f} req/s  "
          f"p50 {r.p50:7.2f}  p99 {r.p99:7.2f}  p99.9 {r.p999:7.2f}  max {r.max:8.1f} ms  "
          f"non-2xx {r.non_2xx}  socket errors {r.socket_errors}  timeouts {r.timeouts}"
          f"{rate} over 2 s {r.over_2s}; cores used: server {r.cpu_server:.2f}, generator {r.cpu_generator:.2f}, "
          f"others {r.cpu_others:.2f}; server CPU per request {r.cpu_us_per_request:,.0f} us{shed}; "
          f"workers' CPU shares {'/'.join(f'{100 * s:.0f}' for s in r.worker_shares)} %"
          f"{' (connections ' + '/'.join(map(str, r.worker_connections)) + ')' if r.worker_connections else ''}"
          f"{' IDLE WORKER (left out of ratios)' if r.idle_worker else ''}",
          flush=True)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    return (ordered[n // 2] + ordered[(n - 1) // 2]) / 2 if n else 0.0


@dataclass
class Paired:
    """A server's figures as ratios of the bare app's in the same alternating round, over the rounds
    in which neither server had an idle worker."""

    cpu: list[float]  # server CPU per request, ÷ the bare app's
    rps: list[float]  # throughput ÷ the bare app's
    p99_under: int  # rounds (all of this server's, idle workers included) with p99 under the target
    rounds: int
    left_out: int  # rounds left out of the ratios for an idle worker (either server's)

    def describe(self, values: list[float]) -> str:
        if not values:
            return "no usable round"
        return f"{median(values):.2f}x ({min(values):.2f}-{max(values):.2f} over {len(values)} rounds)"


def paired(run: Run, base: Run) -> Paired:
    pairs = list(zip(run.rounds, base.rounds))
    usable = [(mine, theirs) for mine, theirs in pairs
              if not mine.idle_worker and not theirs.idle_worker and mine.rps and theirs.rps]
    return Paired([m.cpu_us_per_request / t.cpu_us_per_request for m, t in usable],
                  [m.rps / t.rps for m, t in usable],
                  sum(1 for r in run.rounds if r.p99 < TARGET_P99_MS), len(run.rounds), len(pairs) - len(usable))


def summarize(runs: list[Run], smoke: bool, factor: float = 2.0) -> list[tuple[str, bool]]:
    """Print the ratios to the bare app and the targets; return (target, met) pairs.

    The ratios are paired: each round's figure over the bare app's in the same round, the median
    over the rounds in which every worker of both servers worked (LoadResult.idle_worker)."""
    by_name = {run.name: run for run in runs}
    base, prod = by_name.get("bare"), by_name.get("production")
    if base is None or not base.phases:
        return []
    key = next(iter(base.phases))  # the first closed-loop phase: c16 (c4 in a smoke run)
    print(f"\nSUMMARY (ratios to the bare app at {key}; paired round by round, idle-worker rounds left out)")
    figures: dict[str, Paired] = {}
    for run in runs:
        mine, theirs = run.phases.get(key), base.phases[key]
        if run is base or not mine or not theirs.rps:
            continue
        if run.rounds and base.rounds:
            figures[run.name] = pair = paired(run, base)
            print(f"  {run.name:<10} server CPU per request {pair.describe(pair.cpu)}   throughput "
                  f"{pair.describe(pair.rps)}   p99 < {TARGET_P99_MS:g} ms in {pair.p99_under} of {pair.rounds} "
                  f"rounds; {pair.left_out} rounds left out for an idle worker")
        else:
            print(f"  {run.name:<10} throughput {mine.rps / theirs.rps:5.2f}x   "
                  f"p99 {mine.p99 / max(theirs.p99, 1e-9):5.2f}x   server CPU per request "
                  f"{mine.cpu_us_per_request:,.0f} us against {theirs.cpu_us_per_request:,.0f} us "
                  f"({mine.cpu_us_per_request / max(theirs.cpu_us_per_request, 1e-9):.2f}x)")
    if smoke or prod is None:
        return []
    targets = []
    if "production" in figures:
        pair = figures["production"]
        targets += [
            (f"(c) server CPU per request <= {TARGET_CPU_RATIO}x (a) at {key}",
             bool(pair.cpu) and median(pair.cpu) <= TARGET_CPU_RATIO),
            (f"(c) throughput >= {TARGET_RATIO}x (a) at {key}", bool(pair.rps) and median(pair.rps) >= TARGET_RATIO),
            (f"(c) p99 < {TARGET_P99_MS:g} ms at {key} in >= 90% of rounds",
             pair.rounds > 0 and pair.p99_under >= 0.9 * pair.rounds),
        ]
    if "default" in figures:
        pair = figures["default"]
        targets.append((f"(b) server CPU per request <= {TARGET_DEFAULT_CPU_RATIO}x (a) at {key}",
                        bool(pair.cpu) and median(pair.cpu) <= TARGET_DEFAULT_CPU_RATIO))
    overload = prod.phases.get("overload")
    if overload is not None:
        targets.append((f"(c) no reply over 2 s at {factor:g}x saturation", overload.over_2s == 0))
    for label, met in targets:
        print(f"  target {label:<56} {'PASS' if met else 'MISS'}")
    return targets


def markdown(info: dict[str, str], args, runs: list[Run], targets, argv) -> str:
    """The run's figures as the Markdown RESULTS.md keeps."""
    command = " ".join(["python benchmarks/http.py", *(sys.argv[1:] if argv is None else argv)])
    lines = [f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `{command}`", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines += [f"- gunicorn: `--worker-class {WORKER_CLASS} --workers {args.workers} --threads {args.threads}` "
              "for every server; "
              f"load: {'wrk ' + loadgen.wrk_version() if args.wrk else 'Python closed-loop generator'} "
              f"(closed loop), {loadgen.open_loop_name(args.open_generator)} (open loop)", ""]
    lines += ["| server | phase | generator | conns | req/s | p50 ms | p99 ms | p99.9 ms | max ms | non-2xx | "
              "socket err | timeouts | over 2 s | CPU server / gen / others | server µs/req | workers' CPU % |",
              "|" + "---|" * 16]
    for run in runs:
        for phase, r in run.phases.items():
            rate = f" (target {r.target_rate:,.0f})" if r.target_rate else ""
            lines.append(f"| {run.label} | {phase} | {r.generator} | {r.connections} | {r.rps:,.0f}{rate} | "
                         f"{r.p50:.2f} | {r.p99:.2f} | {r.p999:.2f} | {r.max:,.1f} | {r.non_2xx} | "
                         f"{r.socket_errors} | {r.timeouts} | {r.over_2s} | "
                         f"{r.cpu_server:.2f} / {r.cpu_generator:.2f} / {r.cpu_others:.2f} | "
                         f"{r.cpu_us_per_request:,.0f} | {'/'.join(f'{100 * s:.0f}' for s in r.worker_shares)}"
                         f"{' (conns ' + '/'.join(map(str, r.worker_connections)) + ')' if r.worker_connections else ''}"
                         f"{' **idle worker**' if r.idle_worker else ''} |")
    lines.append("")
    base = next((r for r in runs if r.name == "bare"), None)
    key = next(iter(base.phases)) if base and base.phases else None
    for run in runs:
        if key and run is not base and key in run.phases and base.phases[key].rps:
            mine, theirs = run.phases[key], base.phases[key]
            lines.append(f"- {run.label}: {mine.rps / theirs.rps:.2f}x the bare app's throughput at {key}, "
                         f"p99 {mine.p99 / max(theirs.p99, 1e-9):.2f}x; server CPU per request "
                         f"{mine.cpu_us_per_request:,.0f} us against the bare app's {theirs.cpu_us_per_request:,.0f} us")
        if run.rounds:
            lines.append(f"- {run.name}: the {len(run.rounds)} alternating runs at {key}: "
                         + ", ".join(f"{r.rps:,.0f} req/s (p99 {r.p99:.1f} ms, {r.cpu_us_per_request:,.0f} us/req, "
                                     f"workers {'/'.join(f'{100 * s:.0f}' for s in r.worker_shares)} %"
                                     f"{' conns ' + '/'.join(map(str, r.worker_connections)) if r.worker_connections else ''}"
                                     f"{', idle worker' if r.idle_worker else ''})" for r in run.rounds)
                         + "; the table shows the median of those without an idle worker")
            if base is not None and run is not base and base.rounds:
                pair = paired(run, base)
                lines.append(f"- {run.name}, paired with the bare app round by round: server CPU per request "
                             f"{pair.describe(pair.cpu)}, throughput {pair.describe(pair.rps)}, p99 under "
                             f"{TARGET_P99_MS:g} ms in {pair.p99_under} of {pair.rounds} rounds, {pair.left_out} "
                             "rounds left out for an idle worker")
        if run.hop[0]:
            lines.append(f"- {run.name}: in-process, per before-send message, the rules on a thread pool (as "
                         f"`Chain.decide` runs a chain with a blocking rule) {run.hop[0]:.1f} us, inline "
                         f"{run.hop[1]:.1f} us: the hop costs {run.hop[0] - run.hop[1]:.1f} us")
        if run.shed_overload is not None and "overload" in run.phases:
            lines.append(f"- {run.name}: {run.shed_overload:,} requests were shed during the overload phase "
                         "(answered at once, fail-open, without the rules)")
        for phase, count in run.shed_closed.items():
            lines.append(f"- {run.name}: {count:,} requests shed during the closed-loop {phase} (from /metrics)")
        if run.shed is not None:
            lines.append(f"- {run.name}: {run.shed:,} requests shed over the whole run (the workers' exit log)")
        if run.outcomes:
            lines.append(f"- {run.name}: {run.checked} callbacks checked, {len(run.wrong)} wrong; outcomes "
                         + ", ".join(f"{k} {v}" for k, v in sorted(run.outcomes.items())))
    lines += ["", *(f"- target {label}: **{'PASS' if met else 'MISS'}**" for label, met in targets), ""]
    return "\n".join(lines)
