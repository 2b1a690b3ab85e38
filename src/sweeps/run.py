"""Emit, run and resume sweeps. State is one JSON file per sweep, rewritten atomically after each member.

A member is finished when its state says `done`; anything else (`running` after a kill, `interrupted`,
`failed`) is run again on resume. ZenML's cache makes the rerun cheap: the data steps, and any step of the
interrupted member that had finished, are served from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.compilation import Compiled
from rscale.compiler.emit import emit
from rscale.compiler.plan import Plan
from rscale.console import out
from rscale.errors import ConfigurationError
from rscale.paths import build_dir, project_root

DONE = "done"


@dataclass
class Member:
    plan: Plan
    folder: Path

    @property
    def label(self) -> str:
        """The swept values that make this member, e.g. `train.lr=0.001 model.encoder=gru`."""
        return " ".join(f"{k}={v}" for k, v in self.plan.swept.items()) or " ".join(self.plan.overrides) or "(base)"


@dataclass
class Sweep:
    sweep_id: str
    name: str
    folder: Path
    members: list[Member]
    swept_keys: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)  # as the command gave them, to show and to resume
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def state_file(self) -> Path:
        return self.folder / "state.json"

    def load_state(self) -> dict[str, Any]:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {"sweep_id": self.sweep_id, "members": {}}

    def save_state(self, state: dict[str, Any]) -> None:
        """Write the state atomically (a kill mid-write leaves the previous state), one writer at a time."""
        with self._lock:
            tmp = self.state_file.with_name(f"state.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(state, indent=2, default=str))
            os.replace(tmp, self.state_file)


def sweep_id_for(plans: list[Plan]) -> str:
    """The same members (the same plans: spec, overrides and stack) give the same id, so a rerun resumes."""
    return hashlib.sha256(",".join(sorted(p.hash for p in plans)).encode()).hexdigest()[:10]


def emit_sweep(compiled: Compiled, sweep_id: str | None = None, overrides: list[str] | None = None) -> Sweep:
    """Write each member's plan.json and pipeline.py under build/<name>/sweeps/<id>/members/<hash>/."""
    plans = _distinct(compiled.plans)
    name = plans[0].name
    sweep_id = sweep_id or sweep_id_for(plans)
    folder = build_dir(name) / "sweeps" / sweep_id
    members = [Member(plan, emit(plan, folder / "members" / plan.hash)) for plan in plans]
    keys = list(dict.fromkeys(k for p in plans for k in p.swept))
    record = {
        "sweep_id": sweep_id,
        "name": name,
        "spec_file": plans[0].spec_file,
        "stack": plans[0].stack.name,
        "overrides": list(overrides or []),
        "swept_keys": keys,
        "members": [{"hash": m.plan.hash, "overrides": list(m.plan.overrides), "swept": m.plan.swept} for m in members],
    }
    (folder / "sweep.json").write_text(json.dumps(record, indent=2, default=str))
    return Sweep(sweep_id, name, folder, members, keys, list(overrides or []))


def _distinct(plans: list[Plan]) -> list[Plan]:
    """One member per plan: `train.lr=0.001,1e-3` is one training, not two."""
    seen: dict[str, Plan] = {}
    for plan in plans:
        seen.setdefault(plan.hash, plan)
    return list(seen.values())


def find_sweep(sweep_id: str) -> dict[str, Any]:
    """The sweep.json of sweep `sweep_id` in this project: its spec file, stack and the command's overrides."""
    found = sorted(project_root().glob(f"build/*/sweeps/{sweep_id}/sweep.json"))
    if not found:
        raise ConfigurationError(
            f"no sweep {sweep_id} in {project_root() / 'build'}",
            fix="check the id (rs run prints it first; build/<name>/sweeps/ lists them), or repeat the sweep's command",
        )
    return json.loads(found[0].read_text())


def run_sweep(
    compiled: Compiled, resume: str | None = None, max_parallel: int = 1, overrides: list[str] | None = None
) -> Sweep:
    """Run every unfinished member (never deploying), then write the results table, plot and best.yaml."""
    from rscale.stages.runner import prepare
    from rscale.sweeps.report import write_sweep_report

    console = out()
    sweep = emit_sweep(compiled, overrides=overrides)
    if resume and resume != sweep.sweep_id:
        raise ConfigurationError(
            f"sweep {resume} does not match this spec and these overrides (they make sweep {sweep.sweep_id}); "
            "the spec, the overrides or the stack changed since it ran",
            fix=f"repeat the sweep's own command (build/*/sweeps/{resume}/sweep.json has it), "
            "or drop --resume to start this sweep",
        )
    state = sweep.load_state()
    done = {h for h, m in state["members"].items() if m.get("status") == DONE}
    todo = [m for m in sweep.members if m.plan.hash not in done]
    parallel = _parallelism(sweep.members[0].plan, max_parallel, len(todo))
    console.print(
        f"[bold]sweep {sweep.sweep_id}[/]: {len(sweep.members)} members, {len(sweep.members) - len(todo)} done, "
        f"{len(todo)} to run" + (f", {parallel} at a time" if parallel > 1 else "")
    )
    if todo:
        fingerprint = prepare(sweep.members[0].plan)
        earlier = state.get("fingerprint")
        if done and earlier and earlier != fingerprint:
            console.print(
                f"[yellow]the data changed since the finished members ran[/] (fingerprint {earlier[:8]} -> "
                f"{fingerprint[:8]}): their results are not comparable with the rest; "
                f"delete {sweep.state_file} to run every member again"
            )
        state["fingerprint"] = fingerprint
        sweep.save_state(state)
        os.environ["RS_SWEEP_ID"] = sweep.sweep_id  # the train step tags the tracked run with it
        try:
            if parallel > 1:
                _run_side_by_side(sweep, todo, state, fingerprint, parallel)
            else:
                _run_one_by_one(sweep, todo, state, fingerprint)
        except KeyboardInterrupt:
            console.print(
                f"\n[yellow]sweep {sweep.sweep_id} interrupted[/]: finished members are kept; "
                "run the same command again (or add --resume "
                f"{sweep.sweep_id}) to run the rest"
            )
            raise
        finally:
            os.environ.pop("RS_SWEEP_ID", None)
    write_sweep_report(sweep, state)
    return sweep


def _parallelism(plan: Plan, asked: int, todo: int) -> int:
    """How many members may run at once here: a local GPU is not shared, and a local run gets at least a core."""
    if asked <= 1 or todo <= 1:
        return 1
    local = plan.hardware.runs_on == "orchestrator" and plan.stack.orchestrator.flavor == "local"
    if local and plan.hardware.accelerator == "gpu":
        raise ConfigurationError(
            f"--max-parallel {asked} would train {asked} members at once on this machine's GPUs "
            f"(stack `{plan.stack.name}` trains in the local process)",
            fix="drop --max-parallel to run one member at a time, or use a stack with a step operator",
        )
    if local:
        cores = os.cpu_count() or 1
        if asked > cores:
            out().print(f"[yellow]--max-parallel {asked} is more than this machine's {cores} cores[/]: using {cores}")
            asked = cores
    return max(1, min(asked, todo))


def _started(member: Member) -> dict[str, Any]:
    return {"status": "running", "overrides": list(member.plan.overrides), "swept": member.plan.swept}


def _finished(member: Member, result_file: Path) -> dict[str, Any]:
    return {**_started(member), "status": DONE, "outcome": json.loads(result_file.read_text())}


def _failed(member: Member, exc: BaseException) -> dict[str, Any]:
    text = str(exc).strip()
    return {**_started(member), "status": "failed", "error": text.splitlines()[0] if text else type(exc).__name__}


def _summary(entry: dict[str, Any]) -> str:
    outcome = entry.get("outcome") or {}
    metrics = " ".join(f"{k}={v:.4f}" for k, v in (outcome.get("metrics") or {}).items())
    return f"{metrics} ({outcome.get('seconds', 0.0):.1f}s)"


def _run_one_by_one(sweep: Sweep, todo: list[Member], state: dict[str, Any], fingerprint: str) -> None:
    """Run members in this process. One failed member does not stop the sweep; it is reported and rerun on resume."""
    from rscale.stages import runner

    console = out()
    for index, member in enumerate(todo, 1):
        console.print(f"\n[bold]member {index}/{len(todo)}[/] {member.plan.hash[:8]}: {member.label}")
        state["members"][member.plan.hash] = _started(member)
        sweep.save_state(state)
        result_file = member.folder / "outcome.json"
        try:
            outcome = runner.run_compiled(member.folder / "plan.json", _options(member), fingerprint, deploy=False)
            result_file.write_text(outcome.model_dump_json(indent=2))
            state["members"][member.plan.hash] = _finished(member, result_file)
            console.print(f"[green]member {member.plan.hash[:8]} done[/]: {_summary(state['members'][member.plan.hash])}")
        except KeyboardInterrupt:
            state["members"][member.plan.hash]["status"] = "interrupted"
            sweep.save_state(state)
            raise
        except Exception as exc:  # noqa: BLE001 - reported in the table, rerun on resume
            state["members"][member.plan.hash] = _failed(member, exc)
            console.print(f"[red]member {member.plan.hash[:8]} failed[/]: {exc}")
        sweep.save_state(state)


def _run_side_by_side(
    sweep: Sweep, todo: list[Member], state: dict[str, Any], fingerprint: str, parallel: int
) -> None:
    """Run up to `parallel` members at once, each in its own process (`python -m rscale.sweeps.member`).

    The stack is registered here first, so children never race to register it; each child opens the
    warehouse read-only (DuckDB allows many read-only processes) and shares ZenML's store, whose versioned
    entities (model versions, artifacts) ZenML creates with retries.
    """
    from rscale.stacks import ensure_registered

    console = out()
    ensure_registered(sweep.members[0].plan.stack, activate=True)
    children: dict[str, subprocess.Popen] = {}
    stopping = threading.Event()
    threads = str(max(1, (os.cpu_count() or 1) // parallel))  # no oversubscription: torch takes every core

    def run_one(member: Member) -> None:
        if stopping.is_set():
            return
        state["members"][member.plan.hash] = _started(member)
        sweep.save_state(state)
        result_file = member.folder / "outcome.json"
        result_file.unlink(missing_ok=True)
        log = member.folder / "run.log"
        console.print(f"member {member.plan.hash[:8]} started: {member.label} (log: {log})")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RS_SWEEP_ID": sweep.sweep_id}
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(name, threads)
        command = [sys.executable, "-m", "rscale.sweeps.member", str(member.folder / "pipeline.py"), fingerprint,
                   str(result_file)]
        with log.open("w") as out:
            child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
            children[member.plan.hash] = child
            code = child.wait()
        children.pop(member.plan.hash, None)
        if code == 0 and result_file.exists():
            state["members"][member.plan.hash] = _finished(member, result_file)
            console.print(f"[green]member {member.plan.hash[:8]} done[/]: {_summary(state['members'][member.plan.hash])}")
        elif stopping.is_set():
            state["members"][member.plan.hash]["status"] = "interrupted"
        else:
            tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-3:])
            state["members"][member.plan.hash] = _failed(member, RuntimeError(f"exit code {code}: {tail} (log: {log})"))
            console.print(f"[red]member {member.plan.hash[:8]} failed[/] (exit code {code}), log: {log}")
        sweep.save_state(state)

    pool = ThreadPoolExecutor(parallel, thread_name_prefix="rs-sweep")
    try:
        for future in as_completed([pool.submit(run_one, m) for m in todo]):
            future.result()
    except KeyboardInterrupt:
        stopping.set()
        for child in list(children.values()):
            child.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _options(member: Member) -> dict[str, Any]:
    """The stack's pipeline options, as the member's emitted pipeline.py holds them."""
    from rscale.compiler.emit import load_emitted

    return dict(load_emitted(member.folder).PIPELINE_OPTIONS)
