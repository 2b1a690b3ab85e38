"""Literal credentials in a spec: found by key name (password, token, api_key, ...) and by shape (AWS keys,
private key blocks, well-known token prefixes), so a secret pasted anywhere in the tree is an error.

References (`${env:NAME}`, `${secret:NAME}`) are the fix; they are resolved only at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rscale.compiler.spec.base import SECRET_REF

Path_ = tuple[str | int, ...]

# A key whose last word names a credential. `max_tokens` or `token_dim` are not credentials.
SECRET_KEY = re.compile(
    r"(^|[_-])(password|passwd|passphrase|pwd|token|secret|api[_-]?key|private[_-]?key|access[_-]?key|"
    r"secret[_-]?key|client[_-]?secret|auth[_-]?token|credentials?)$",
    re.IGNORECASE,
)
SECRET_SHAPES = (
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "an AWS access key id"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "a GitHub token"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), "a Slack token"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{20,}\b"), "an API secret key"),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@"), "a password inside a URL"),
)
# Values that are plainly not secrets even under a secret-sounding key.
NOT_A_SECRET = {"", "none", "null", "changeme", "<redacted>", "********"}


@dataclass(frozen=True)
class LiteralSecret:
    path: Path_
    value: str  # the literal text to mask wherever the spec is shown
    what: str  # "a password", "an AWS access key id", ...


def find_literal_secrets(tree: Any, path: Path_ = ()) -> Iterator[LiteralSecret]:
    """Every string in `tree` that is a literal credential rather than a reference to one."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            child = (*path, key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and SECRET_KEY.search(str(key)):
                text = str(value)
                if not SECRET_REF.match(text) and text.strip().lower() not in NOT_A_SECRET:
                    yield LiteralSecret(child, text, f"a literal `{key}`")
                    continue
            yield from find_literal_secrets(value, child)
    elif isinstance(tree, list):
        for index, item in enumerate(tree):
            yield from find_literal_secrets(item, (*path, index))
    elif isinstance(tree, str):
        for shape, what in SECRET_SHAPES:
            match = shape.search(tree)
            if match:
                secret = match.group(1) if shape.groups and what.startswith("a password") else match.group(0)
                if what == "a private key":
                    secret = tree  # mask the whole block, not only its header
                yield LiteralSecret(path, secret, what)
                return


def env_name_for(path: Path_) -> str:
    """A suggested environment variable name for the secret at `path`, e.g. TRACKER_API_TOKEN."""
    words = [str(p) for p in path if isinstance(p, str)][-2:] or ["secret"]
    return re.sub(r"[^A-Z0-9]+", "_", "_".join(words).upper()).strip("_")


MASK = "********"
# `key: value` in block style (`password: x`) or inside a flow mapping (`{api_token: x, ...}`).
_KEY_VALUE = re.compile(r"""(?P<key>[\w.-]+)(?P<sep>["']?[ \t]*:[ \t]+)(?P<value>"[^"\n]*"|'[^'\n]*'|[^,}\]\s#][^,}\]#\r\n]*)""")


def mask_secret_lines(text: str) -> str:
    """The text with every value that looks like a credential replaced by MASK, line by line.

    For text that does not parse (a YAML syntax error's snippet), where the tree-based search cannot run:
    values under secret-sounding keys and values of a known credential shape are masked, and so is every
    line of a private key block.
    """
    out: list[str] = []
    in_key_block = False
    for line in text.splitlines(keepends=True):
        if in_key_block:
            out.append(MASK + ("\n" if line.endswith("\n") else ""))
            in_key_block = "-----END" not in line
            continue

        def masked(match: re.Match[str]) -> str:
            value = match.group("value").strip().strip("'\"")
            if SECRET_KEY.search(match.group("key")) and not SECRET_REF.match(value) and value.lower() not in NOT_A_SECRET:
                return match.group("key") + match.group("sep") + MASK
            return match.group(0)

        line = _KEY_VALUE.sub(masked, line)
        for shape, what in SECRET_SHAPES:
            if what == "a private key" and shape.search(line):
                in_key_block = "-----END" not in line.split("-----BEGIN", 1)[1]
                line = shape.sub(MASK, line)
            elif what.startswith("a password"):  # only the password part of a URL
                line = shape.sub(lambda m: m.group(0).replace(m.group(1), MASK), line)
            else:
                line = shape.sub(MASK, line)
        out.append(line)
    return "".join(out)
