"""A literal secret in a spec is never echoed by `rs`, not even in the snippet of a YAML syntax error
(where the spec does not parse, so the tree-based secret check cannot see it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from rscale.cli.app import app
from rscale.cli.main import main  # noqa: F401  (registers every command module)

SECRET = "Zq8-very-secret-Value-77"
BROKEN = {
    "block key, syntax error on the next line": f"spec_version: 1\nname: x\npassword: {SECRET}\n  bad: [\n",
    "flow mapping, error on the same line": f"spec_version: 1\nname: x\ntracker: {{kind: neptune, api_token: {SECRET}\n  mode: offline\n",
    "quoted, error after it": f'spec_version: 1\nname: x\ndata:\n  password: "{SECRET}" x: [\n',
    "an API key shape under any key": f"spec_version: 1\nname: x\nnote: sk-{SECRET}abcdefghij\n  bad: [\n",
    "a URL with a password": f"spec_version: 1\nname: x\nuri: postgres://me:{SECRET}@db/x\n  bad: [\n",
    "a private key block": f"spec_version: 1\nname: x\nkey: |\n  -----BEGIN RSA PRIVATE KEY-----\n  {SECRET}\n  -----END RSA PRIVATE KEY-----\n  x: [\n",
    "a tab where YAML wants spaces": f"spec_version: 1\nname: x\ntoken: {SECRET}\n\tbad: 1\n",
    "valid YAML, the secret check itself": f"spec_version: 1\nname: x\ntracker: {{kind: neptune, project: a/b, api_token: {SECRET}}}\n",
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_secret_is_not_in_any_output(project: Path, case: str) -> None:
    (project / "spec.yaml").write_text(BROKEN[case])
    for command in (["validate", "spec.yaml"], ["compile", "spec.yaml", "--offline"]):
        result = CliRunner().invoke(app, command)
        assert result.exit_code == 2, result.output
        assert SECRET not in result.output, result.output
        assert "spec.yaml:" in result.output  # still says where
