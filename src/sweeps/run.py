"""Emit, run and resume sweeps. State is one JSON file per sweep, rewritten atomically after each member."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rscale.compiler.compilation import Compiled
from rscale.compiler.emit import emit
from rscale.compiler.plan import Plan
from rscale.paths import build_dir


@dataclass
class Member:
    plan: Plan
    folder: Path


@dataclass
class Sweep:
    sweep_id: str
    name: str
    folder: Path
    members: list[Member]
    swept_keys: list[str] = field(default_factory=list)

    @property
    def state_file(self) -> Path:
        return self.folder / "state.json"

    def load_state(self) -> dict[str, Any]:
        if self.state_file.exists():
            return json.loads(self.state_file.read_text())
        return {"sweep_id": self.sweep_id, "members": {}}

    def save_state(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, default=str))
        os.replace(tmp, self.state_file)


def sweep_id_for(plans: list[Plan]) -> str:
    return hashlib.sha256(",".join(sorted(p.hash for p in plans)).encode()).hexdigest()[:10]


def emit_sweep(compiled: Compiled, sweep_id: str | None = None) -> Sweep:
    """Write each member's plan.json and pipeline.py under build/<name>/sweeps/<id>/members/<hash>/."""
    plans = compiled.plans
    name = plans[0].name
    sweep_id = sweep_id or sweep_id_for(plans)
    folder = build_dir(name) / "sweeps" / sweep_id
    members = [Member(plan, emit(plan, folder / "members" / plan.hash)) for plan in plans]
    keys = list(dict.fromkeys(k for p in plans for k in p.swept))
    (folder / "sweep.json").write_text(
        json.dumps(
            {"sweep_id": sweep_id, "name": name, "swept_keys": keys,
             "members": [{"hash": m.plan.hash, "overrides": list(m.plan.overrides), "swept": m.plan.swept} for m in members]},
            indent=2,
            default=str,
        )
    )
    return Sweep(sweep_id, name, folder, members, keys)


def run_sweep(compiled: Compiled, resume: str | None = None, max_parallel: int = 1) -> Sweep:
    """Run every unfinished member, then write the results table, plot and best.yaml."""
    from rscale.cli.app import console
    from rscale.errors import ConfigurationError
    from rscale.stages.runner import prepare
    from rscale.sweeps.report import write_report

    sweep = emit_sweep(compiled)
    if resume and resume != sweep.sweep_id:
        raise ConfigurationError(
            f"sweep {resume} does not match these overrides (they make sweep {sweep.sweep_id})",
            fix="repeat the original command's overrides, or drop --resume to start this sweep",
        )
    state = sweep.load_state()
    done = {h for h, m in state["members"].items() if m.get("status") == "done"}
    todo = [m for m in sweep.members if m.plan.hash not in done]
    console.print(
        f"[bold]sweep {sweep.sweep_id}[/]: {len(sweep.members)} members, {len(done)} done, {len(todo)} to run"
        + (f", {max_parallel} at a time" if max_parallel > 1 else "")
    )
    os.environ["RS_SWEEP_ID"] = sweep.sweep_id
    fingerprint = prepare(sweep.members[0].plan) if todo else ""

    def run_one(member: Member) -> None:
        state["members"][member.plan.hash] = {"status": "running", "overrides": list(member.plan.overrides),
                                              "swept": member.plan.swept}
        sweep.save_state(state)
        result_file = member.folder / "outcome.json"
        try:
            if max_parallel > 1:
                _run_in_child(member, fingerprint, result_file)
            else:
                from rscale.stages.runner import run_compiled

                outcome = run_compiled(member.folder / "plan.json", _options(member), fingerprint, deploy=False)
                result_file.write_text(outcome.model_dump_json(indent=2))
            state["members"][member.plan.hash] = {
                "status": "done", "overrides": list(member.plan.overrides), "swept": member.plan.swept,
                "outcome": json.loads(result_file.read_text()),
            }
        except KeyboardInterrupt:
            state["members"][member.plan.hash]["status"] = "interrupted"
            sweep.save_state(state)
            raise
        except Exception as exc:  # one failed member does not stop the sweep; it is reported and re-run on resume
            state["members"][member.plan.hash] = {
                "status": "failed", "overrides": list(member.plan.overrides), "swept": member.plan.swept,
                "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            }
            console.print(f"[red]member {member.plan.hash} failed[/]: {exc}")
        sweep.save_state(state)

    try:
        if max_parallel > 1:
            with ThreadPoolExecutor(max_parallel) as pool:
                list(pool.map(run_one, todo))
        else:
            for index, member in enumerate(todo, 1):
                console.print(f"\n[bold]member {index}/{len(todo)}[/] {' '.join(member.plan.overrides)}")
                run_one(member)
    finally:
        os.environ.pop("RS_SWEEP_ID", None)
    write_report(sweep, state)
    return sweep


def _options(member: Member) -> dict[str, Any]:
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"rscale_member_{member.plan.hash}", member.folder / "pipeline.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.PIPELINE_OPTIONS)


def _run_in_child(member: Member, fingerprint: str, result_file: Path) -> None:
    """Run a member in its own process (for --max-parallel), writing its outcome as JSON."""
    log = member.folder / "run.log"
    with log.open("w") as out:
        code = subprocess.call(
            [sys.executable, "-m", "rscale.sweeps.member", str(member.folder / "pipeline.py"), fingerprint, str(result_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    if code != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"exit code {code}: {' | '.join(tail)} (log: {log})")
