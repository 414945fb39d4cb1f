"""One `photon replay-test` run: each suite's bag fed to its nodes, the outputs compared with the
suite's reference (or re-pinned with update_refs), per-frame compute time reported against a budget."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from photon_policy.launcher import ProfileProcesses
from photon_policy.learning.checkpoint import content_hash
from photon_policy.replay.compare import Difference, compare, diff_report
from photon_policy.replay.feeder import ReplayRun, feed, percentiles_ms
from photon_policy.replay.plan import FeedPlan, load_plan
from photon_policy.replay.refs import (Reference, bag_sha256, check_reference, load_node_checkpoint, made_now,
                                       node_parameters, read_reference, ref_path, write_reference)
from photon_policy.replay.suites import DEFAULT_REFS, NODES, Suite, load_suites, prediction_frames


@dataclass
class SuiteResult:
    suite: Suite
    run: ReplayRun
    diffs: list[Difference]
    reference: Path
    updated: bool
    budget_ms: dict[str, float]

    def text(self) -> str:
        run = self.run
        title = (f"suite '{self.suite.name}' ({self.suite.bag.name}, {run.frames} frames, {run.wall_s:.1f} s, "
                 f"of which {run.startup_s:.1f} s starting the nodes)")
        lines = [f"re-pinned {self.reference}: {title}" if self.updated else diff_report(self.diffs, title).rstrip()]
        for name, result in self.run.nodes.items():
            p50, p99 = percentiles_ms(result.latencies_s)
            budget = self.budget_ms[name]
            verdict = "within" if p99 <= budget else "OVER"
            own = {k: v for k, v in result.diagnostics.items() if k.startswith(("inference_ms", "callback_ms"))}
            counts = ", ".join(f"{t}: {len(o['messages'])}" for t, o in result.outputs.items())
            lines.append(f"  {name}: {counts}; per-frame time (frame out -> answer in) p50 {p50:.1f} ms, "
                         f"p99 {p99:.1f} ms: {verdict} the {budget:g} ms budget"
                         + (f"; the node's own {own}" if own else ""))
            lost = {k: v for k, v in result.diagnostics.items()
                    if k in ("dropped_frames", "frames_lost_in_transport") and v not in ("0", "")}
            if lost:
                lines.append(f"  {name}: WARNING its diagnostics report {lost}")
        lines += [f"  skipped: {s}" for s in self.run.skipped] + [f"  bag: {w}" for w in self.run.warnings]
        return "\n".join(lines) + "\n"


@dataclass
class ReplayReport:
    results: list[SuiteResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(not r.diffs for r in self.results)

    def text(self) -> str:
        return "".join(r.text() for r in self.results)


def expected_answers(suite: Suite, plan: FeedPlan, checkpoints: dict[str, dict | None]) -> dict[str, dict[int, list[int]]]:
    """node -> frame index -> the stamps (ns) it answers after that frame (see suites.yaml `answers`)."""
    out: dict[str, dict[int, list[int]]] = {}
    for node in suite.nodes:
        if node.answers == "every_frame":
            frames = range(len(plan.steps))
        elif node.answers == "world_model":
            config = checkpoints[node.name]["model_config_obj"]
            frames = prediction_frames(plan.stamps_s, config.model_dt, config.context_steps,
                                       float(node_parameters(node).get("rate_hz", 0.0)))
        else:
            out[node.name] = {k: plan.fed(node.fed_topic, k) for k in range(len(plan.steps))}
            continue
        out[node.name] = {k: [plan.steps[k].stamp_ns] for k in frames}
    return out


def run_replay(refs_dir: Path = DEFAULT_REFS, nodes: list[str] | None = None, update_refs: bool = False,
               log_dir: Path | None = None, budget_ms: float | None = None, answer_timeout_s: float = 20.0,
               on_frame: Callable[[int, int, ProfileProcesses], None] | None = None) -> ReplayReport:
    """Replay every suite under refs_dir with the nodes named (default all). ReferenceError (refused,
    before any node starts) for a reference made with another checkpoint or bag; RunError
    (photon_policy.lockstep) when a node crashes or a deadline passes; else the report, with
    diff.txt in log_dir when outputs differ."""
    wanted = set(nodes or NODES)
    unknown = wanted - set(NODES)
    if unknown:
        raise ValueError(f"unknown node(s) {sorted(unknown)}; replayable: {', '.join(NODES)}")
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="photon-replay-"))
    suites = [s.selected(wanted) for s in load_suites(refs_dir)]
    suites = [s for s in suites if s.nodes]
    prepared = []
    for suite in suites:  # every reference is checked before any node starts
        checkpoints = {n.name: load_node_checkpoint(n) for n in suite.nodes}
        hashes = {name: content_hash(c) for name, c in checkpoints.items() if c is not None}
        bag_hash = bag_sha256(suite.bag)
        path = ref_path(refs_dir, suite.name)
        ref = None
        if not update_refs or path.is_file():
            ref = read_reference(path)
            if not update_refs:
                check_reference(path, ref, suite, bag_hash, hashes)
        prepared.append((suite, checkpoints, hashes, bag_hash, path, ref))
    report = ReplayReport()
    for suite, checkpoints, hashes, bag_hash, path, ref in prepared:
        plan = load_plan(suite)
        run = feed(suite, plan, expected_answers(suite, plan, checkpoints), log_dir / suite.name,
                   answer_timeout_s=answer_timeout_s, on_frame=on_frame)
        outputs = {name: result.outputs for name, result in run.nodes.items()}
        budgets = {n.name: budget_ms if budget_ms is not None else n.budget_ms for n in suite.nodes}
        if update_refs:
            keep = ref if ref is not None and ref.bag_sha256 == bag_hash else None
            write_reference(path, Reference(
                suite.name, bag_hash, {**(keep.checkpoints if keep else {}), **hashes},
                {**(keep.parameters if keep else {}), **{n.name: node_parameters(n) for n in suite.nodes}},
                {**(keep.outputs if keep else {}), **outputs}, made_now()))
            report.results.append(SuiteResult(suite, run, [], path, True, budgets))
            continue
        diffs = [d for name in outputs for d in compare(ref.outputs[name], outputs[name])]
        report.results.append(SuiteResult(suite, run, diffs, path, False, budgets))
    if not report.ok:
        (log_dir / "diff.txt").write_text(report.text())
    return report
