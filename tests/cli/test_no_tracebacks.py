"""No `rs` command shows a traceback without --debug: bad arguments, missing state and broken inputs all get
an `error:` line and a fix, and a non-zero exit code.

Runs the CLI in-process (Typer's runner) in a fresh project folder; a locked DuckDB file is held by a real
second process, as another `rs run` or a notebook would hold it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.cli.app import STATE, app
from rscale.cli.main import main  # noqa: F401  (registers every command module)

SPEC_COMMANDS = [["validate"], ["compile"], ["run"], ["deploy"]]
NAME_COMMANDS = [["serve"], ["stop"], ["undeploy"], ["status"], ["predict", "{}"], ["deploy"]]
BROKEN_SPECS = {
    "empty.yaml": b"",
    "comments.yaml": b"# nothing here\n",
    "list.yaml": b"- a\n",
    "scalar.yaml": b"recs\n",
    "syntax.yaml": b"name: x\n  data: [\n",
    "not-utf8.yaml": b"name: \xff\xfe\x00x\n",
    "deep.yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "tabs.yaml": b"name:\tx\n\tdata: 1\n",
    "binary.yaml": bytes(range(256)),
}


@pytest.fixture
def rs(project: Path) -> Iterator[object]:
    runner = CliRunner()
    STATE["debug"] = False

    def run(*args: str) -> object:
        result = runner.invoke(app, list(args))
        output = result.output
        assert "Traceback" not in output, (args, output)
        exception = result.exception
        assert exception is None or isinstance(exception, SystemExit), (args, repr(exception), output)
        return result

    yield run


def _failed(result: object) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code != 0, output  # type: ignore[attr-defined]
    assert "error" in output.lower() or "usage" in output.lower(), output
    return output


def _commands() -> list[list[str]]:
    import typer

    group = typer.main.get_command(app)
    names: list[list[str]] = []
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            names += [[name, sub] for sub in command.commands]
        else:
            names.append([name])
    return names


def test_every_command_refuses_an_unknown_option_without_a_traceback(rs) -> None:
    commands = _commands()
    assert len(commands) >= 15
    for command in commands:
        _failed(rs(*command, "--no-such-option"))


@pytest.mark.parametrize("name", sorted(BROKEN_SPECS))
def test_broken_spec_files_are_errors_with_a_fix(rs, project: Path, name: str) -> None:
    (project / name).write_bytes(BROKEN_SPECS[name])
    for command in SPEC_COMMANDS:
        output = _failed(rs(*command, name))
        assert name in output and "fix" in output, output


def test_missing_and_unreadable_spec_paths(rs, project: Path) -> None:
    (project / "folder.yaml").mkdir()
    for command in SPEC_COMMANDS:
        for path in ("nothing.yaml", "folder.yaml"):
            assert path in _failed(rs(*command, path))


def test_commands_about_an_endpoint_that_does_not_exist(rs) -> None:
    for command in NAME_COMMANDS:
        if command[0] == "deploy":
            continue
        result = rs(command[0], "ghost", *command[1:])
        if command[0] != "status":
            assert "ghost" in _failed(result)


def test_a_torn_endpoint_record_reads_as_no_endpoint(rs, project: Path) -> None:
    from rscale.paths import serving_dir

    (serving_dir() / "torn.json").write_text('{"tier": "local", "pid": ')
    (serving_dir() / "odd.json").write_text('{"tier": "nonsense", "stack": {"name": "x"}}')
    for name in ("torn", "odd"):
        for command in (["status", name], ["stop", name], ["predict", name, "{}"], ["undeploy", name]):
            rs(*command)


def test_bad_arguments_to_each_command(rs, project: Path) -> None:
    _failed(rs("predict", "ghost", "{not json"))
    _failed(rs("predict", "ghost", "[1, 2]"))
    _failed(rs("predict", "ghost", "--file", "missing.json"))
    _failed(rs("predict", "ghost", "--file", "/dev/zero"))  # would never end if read
    _failed(rs("validate", "/dev/zero"))
    _failed(rs("serve", "--model-dir", "no-such-dir"))
    _failed(rs("serve", "--model-dir", str(project / "specs")))
    _failed(rs("serve"))
    _failed(rs("serve", "ghost", "--port", "99999"))
    _failed(rs("compile", "specs/conversion.yaml", "train.lr=abc"))
    _failed(rs("compile", "specs/conversion.yaml", "--stack", "nowhere"))
    _failed(rs("compile", "specs/conversion.yaml", "nokey=1"))
    _failed(rs("run", "specs/conversion.yaml", "train.lr=1e-3,1e-2"))  # a sweep without -m
    _failed(rs("deploy", "specs/conversion.yaml", "--model-dir", "nowhere"))
    _failed(rs("undeploy", "ghost", "--stack", "nowhere"))
    _failed(rs("stack", "show", "nowhere"))
    _failed(rs("stack", "use", "nowhere"))
    _failed(rs("stack", "up", "nowhere"))
    _failed(rs("stack", "build-context", "nowhere"))
    _failed(rs("seed", "--sessions", "-5"))
    for name in ("../../outside", "a/b", "x" * 200):  # endpoint names become file names under .rs/
        for command in (["status", name], ["stop", name], ["predict", name, "{}"], ["undeploy", name]):
            assert "cannot name an endpoint" in _failed(rs(*command))
    assert not (project.parent / "outside.json").exists()
    _failed(rs("schema", "--out", str(project / "specs" / "conversion.yaml" / "x.json")))  # parent is a file


def test_a_broken_stack_file_is_an_error_with_a_fix(rs, project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stacks = project / "stacks"
    monkeypatch.setenv("RS_STACKS_DIR", str(stacks))
    (stacks / "broken.yaml").write_text("name: broken\n  orchestrator: [\n")
    (stacks / "list.yaml").write_text("- a\n")
    (stacks / "empty.yaml").write_text("")
    for stack in ("broken", "list", "empty"):
        _failed(rs("stack", "show", stack))
        _failed(rs("compile", "specs/conversion.yaml", "--stack", stack, "--offline"))


def test_run_without_a_compiled_pipeline_says_what_to_do(rs) -> None:
    assert "fix" in _failed(rs("run"))


def test_a_missing_warehouse_is_named(rs, project: Path) -> None:
    output = _failed(rs("compile", "specs/conversion.yaml"))  # no `rs seed` yet: no warehouse file
    assert "fix" in output


def test_a_locked_duckdb_warehouse_is_named_with_the_fix(rs, project: Path) -> None:
    from rscale.paths import state_dir

    assert rs("seed", "--sessions", "50").exit_code == 0  # type: ignore[attr-defined]
    (warehouse,) = state_dir().glob("*.duckdb")
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,sys; c=duckdb.connect({str(warehouse)!r}); print('held', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for command in (["seed", "--sessions", "50"], ["compile", "specs/conversion.yaml"]):
            output = _failed(rs(*command))
            assert "fix" in output and ("lock" in output.lower() or "in use" in output.lower()), output
    finally:
        holder.communicate("", timeout=30)


def test_an_unexpected_error_is_one_line_with_the_debug_hint(rs, monkeypatch: pytest.MonkeyPatch) -> None:
    import rscale.serving.endpoint as endpoint

    def broken() -> list[str]:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(endpoint, "recorded_endpoints", broken)
    output = _failed(rs("status"))
    assert "internal error: ZeroDivisionError: a bug" in output and "--debug" in output
