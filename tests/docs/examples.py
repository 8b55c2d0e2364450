"""The documentation's fenced code blocks, what each one is, and how it runs.

A block's info string is its language, then optional words GitHub ignores:
- `not-run: REASON` — the block is not run, and says why (sample output, needs a GPU…);
- `expect=TEXT` — its output must contain TEXT (no spaces; repeatable);
- `shows-errors` — a shell block whose curl answers with HTTP errors on purpose (otherwise
  every curl runs with `--fail-with-body`, so a wrong URL or a refused request fails it);
- `file=NAME` — a YAML block that a Helm block of the same document passes as `-f NAME`.

Runnable: `bash`/`sh`/`shell` blocks of curl, `gateway` administration commands and a few
text tools (against a live gateway and its database), `helm install|upgrade|template` blocks
and `yaml` values blocks (rendered with the chart), and `python` blocks (the SDKs, against
the live gateway). Any other block without `not-run: REASON` cannot be run, and fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.helm.conftest import deep_merge

REPOSITORY = Path(__file__).resolve().parents[2]
CHART = REPOSITORY / "helm" / "llm-gateway"

BASE_URL = "http://127.0.0.1:8080"
"""Where `./scripts/up` serves, as the documentation writes it; replaced by the live one."""
METRICS_URL = "http://127.0.0.1:9464"
"""Where `./scripts/up` serves `/metrics`; replaced by the live gateway's metrics port."""
LOCAL_ADDRESSES = re.compile(r"(127\.0\.0\.1|localhost):(8080|9464)\b")

SHELLS = frozenset({"bash", "sh", "shell"})
PYTHON = frozenset({"python", "py", "python3"})
YAML = frozenset({"yaml", "yml"})
SHELL_COMMANDS = frozenset(
    {"curl", "jq", "echo", "printf", "export", "grep", "head", "tail", "sort", "gateway"}
)
"""What a runnable shell block may call (plus `build-engines … --dry-run`)."""
GATEWAY_COMMANDS = frozenset({"accounts", "tokens", "usage", "migrate"})
"""`gateway` subcommands that run against the live gateway's database (`up` and `serve`
would start servers of their own)."""
HELM_FLAGS_WITH_VALUES = frozenset({"-n", "--namespace", "--timeout", "--version"})
HELM_FLAGS = frozenset({"--create-namespace", "--wait", "--install", "--atomic", "--dry-run"})

FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


def fence(line: str) -> re.Match[str] | None:
    """A fence line, as CommonMark reads one: a backtick fence's info string holds no
    backtick (such a line is text, not a fence)."""
    found = FENCE.match(line)
    if found is None or (found.group("fence")[0] == "`" and "`" in found.group("info")):
        return None
    return found


@dataclass(frozen=True)
class Block:
    """One fenced code block: its document (relative to the repository), the line of its
    opening fence, its info string and its text."""

    path: str
    line: int
    info: str
    text: str

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def language(self) -> str:
        words = self.info.split()
        return words[0].lower() if words else ""

    @property
    def _attributes(self) -> str:
        return self.info.strip()[len(self.language) :].strip()

    @property
    def not_run(self) -> str | None:
        """The reason given with `not-run:` ("" when none is); None: the block runs."""
        found = re.search(r"(?:^|\s)not-run\b:?(.*)$", self._attributes)
        return None if found is None else found.group(1).strip()

    @property
    def options(self) -> dict[str, str]:
        """The words before any `not-run`: `key=value`, or a flag (value "")."""
        words = re.split(r"(?:^|\s)not-run\b", self._attributes)[0].split()
        return dict(word.partition("=")[::2] for word in words)

    @property
    def expected(self) -> list[str]:
        words = re.split(r"(?:^|\s)not-run\b", self._attributes)[0].split()
        return [word.removeprefix("expect=") for word in words if word.startswith("expect=")]


def documents() -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]


def blocks_of(path: Path) -> list[Block]:
    relative = path.relative_to(REPOSITORY).as_posix()
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = fence(lines[index])
        if opening is None:
            index += 1
            continue
        marker, indent = opening.group("fence"), len(opening.group("indent"))
        body: list[str] = []
        end = index + 1
        while end < len(lines):
            closing = fence(lines[end])
            if (
                closing is not None
                and closing.group("fence")[0] == marker[0]
                and len(closing.group("fence")) >= len(marker)
                and not closing.group("info").strip()
            ):
                break
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        found.append(Block(relative, index + 1, opening.group("info").strip(), "\n".join(body)))
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks_of(path)]


@dataclass(frozen=True)
class Command:
    line: int
    """Line within the block (1-based) where the command starts."""
    words: list[str]


def shell_commands(script: str) -> list[Command]:
    """The simple commands of a shell script, split on newlines, `;`, `|`, `&`, `(`, `)`
    and `$(`, with quotes, escapes, continuations and comments read as the shell reads
    them (enough for documentation examples: no here-documents or backquotes)."""
    commands: list[Command] = []
    words: list[str] = []
    word: str | None = None
    quote: str | None = None
    line = start = 1
    index = 0

    def end_word() -> None:
        nonlocal word
        if word is not None:
            words.append(word)
            word = None

    def end_command() -> None:
        nonlocal words
        end_word()
        if words:
            commands.append(Command(start, words))
        words = []

    while index < len(script):
        char = script[index]
        following = script[index + 1] if index + 1 < len(script) else ""
        if char == "\n":
            line += 1
        if quote == "'":
            if char == "'":
                quote = None
            else:
                word = (word or "") + char
        elif quote == '"':
            if char == '"':
                quote = None
            elif char == "\\" and following in '"\\$`\n':
                index += 1
                line += following == "\n"
                word = (word or "") + ("" if following == "\n" else following)
            else:
                word = (word or "") + char
        elif char == "\\" and following == "\n":
            index += 1
            line += 1
        elif char == "\\":
            index += 1
            word = (word or "") + following
        elif char in "'\"":
            quote = char
            word = word or ""
        elif char == "#" and word is None:
            while index + 1 < len(script) and script[index + 1] != "\n":
                index += 1
        elif char in " \t":
            end_word()
        elif char in "\n;|&()" or (char == "$" and following == "("):
            end_command()
            if char == "$":
                index += 1
        else:
            if not words and word is None:
                start = line
            word = (word or "") + char
        index += 1
    end_command()
    return commands


def command_words(command: Command) -> list[str]:
    """A command's words without its leading assignments (`NAME=value`)."""
    words = list(command.words)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        words.pop(0)
    return words


def why_not_runnable(words: list[str]) -> str | None:
    """Why a shell command cannot run against the live gateway; None: it can."""
    if not words:
        return None
    name = words[0]
    if name == "gateway":
        if len(words) < 2 or words[1] not in GATEWAY_COMMANDS:
            return "`gateway " + " ".join(words[1:2]) + "` would start servers of its own"
        if "--downgrade" in words:
            return "`gateway migrate --downgrade` would roll the live gateway's database back"
        return None
    if name == "build-engines" and "--dry-run" in words:
        return None
    if name in SHELL_COMMANDS:
        return None
    return f"`{name}` does not run here"


@dataclass
class Plan:
    """What running a block means: `kind` is "not-run", "shell", "python", "helm" or
    "values"; `problem` says why an untagged block cannot run."""

    kind: str
    problem: str | None = None
    helm: list[list[str]] = field(default_factory=list)


def plan(block: Block) -> Plan:
    if block.not_run is not None:
        if not block.not_run:
            return Plan("not-run", "`not-run` needs a reason: `not-run: <why>`")
        return Plan("not-run")
    untagged = (
        f"{block.id}: a `{block.language or 'plain'}` block cannot be run; tag it "
        f"`{block.language or 'text'} not-run: <why>`"
    )
    if block.language in PYTHON:
        return Plan("python")
    if block.language in YAML:
        return Plan("values")
    if block.language not in SHELLS:
        return Plan("not-run", untagged)
    commands = shell_commands(block.text)
    helm = [command_words(c) for c in commands if command_words(c)[:1] == ["helm"]]
    if helm:
        if len(helm) != len(commands):
            return Plan("helm", f"{block.id}: a Helm block holds helm commands only")
        return Plan("helm", helm=helm)
    for command in commands:
        problem = why_not_runnable(command_words(command))
        if problem is not None:
            return Plan(
                "shell",
                f"{block.id}, line {block.line + command.line}: {problem}; run it or tag "
                f"the block `{block.language} not-run: <why>`",
            )
    return Plan("shell")


# Helm


def helm_scalar(text: str) -> Any:
    """A `--set` value typed as Helm types it: booleans, null and integers; else text."""
    if text in ("true", "false"):
        return text == "true"
    if text == "null":
        return None
    if re.fullmatch(r"-?[0-9]+", text) and not re.fullmatch(r"-?0[0-9]+", text):
        return int(text)
    return text


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, depth, index = [], "", 0, 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            current += text[index : index + 2]
            index += 2
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == separator and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def set_values(assignments: str, *, as_string: bool = False) -> dict[str, Any]:
    """Values of one `--set` (or `--set-string`) argument: `a.b=1,c={x,y}`."""
    values: dict[str, Any] = {}
    for assignment in _split_unescaped(assignments, ","):
        key, equals, raw = assignment.partition("=")
        if not equals or "[" in key:
            raise ValueError(f"--set {assignment!r}: only key.path=value is understood here")
        path = [part.replace("\\.", ".") for part in _split_unescaped(key, ".")]
        value: Any
        if raw.startswith("{") and raw.endswith("}"):
            items = _split_unescaped(raw[1:-1], ",") if raw[1:-1] else []
            value = [item if as_string else helm_scalar(item) for item in items]
        else:
            value = raw.replace("\\,", ",") if as_string else helm_scalar(raw.replace("\\,", ","))
        target = values
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    return values


def helm_values(words: list[str], files: dict[str, str]) -> dict[str, Any]:
    """The values a `helm install|upgrade|template RELEASE CHART …` command passes to this
    repository's chart: its `-f` files (a repository path, or a YAML block of the same
    document marked `file=NAME`) in order, then its `--set`s."""
    if len(words) < 2 or words[1] not in ("install", "upgrade", "template"):
        raise ValueError(f"`{' '.join(words[:2])}`: only helm install, upgrade, template")
    layers: list[dict[str, Any]] = []
    sets: list[dict[str, Any]] = []
    positional: list[str] = []
    arguments = iter(words[2:])
    for argument in arguments:
        flag, equals, inline = argument.partition("=")
        if flag in ("--set", "--set-string", "-f", "--values") or flag in HELM_FLAGS_WITH_VALUES:
            value = inline if equals else next(arguments, "")
            if flag in ("--set", "--set-string"):
                sets.append(set_values(value, as_string=flag == "--set-string"))
            elif flag in ("-f", "--values"):
                layers.append(_values_file(value, files))
        elif argument in HELM_FLAGS:
            continue
        elif argument.startswith("-"):
            raise ValueError(f"helm flag {argument} is not understood here")
        else:
            positional.append(argument)
    if len(positional) != 2:
        raise ValueError(f"expected RELEASE CHART, got {positional}")
    if (REPOSITORY / positional[1]).resolve() != CHART:
        raise ValueError(f"the chart is ./helm/llm-gateway, not {positional[1]}")
    values: dict[str, Any] = {}
    for layer in [*layers, *sets]:
        values = deep_merge(values, layer)
    return values


def _values_file(name: str, files: dict[str, str]) -> dict[str, Any]:
    if name in files:
        text = files[name]
    elif (REPOSITORY / name).is_file():
        text = (REPOSITORY / name).read_text()
    else:
        raise ValueError(f"-f {name}: neither a repository file nor a `yaml file={name}` block")
    return yaml.safe_load(text) or {}


def values_files(block: Block) -> dict[str, str]:
    """The YAML blocks marked `file=NAME` in a block's document."""
    return {
        other.options["file"]: other.text
        for other in blocks_of(REPOSITORY / block.path)
        if other.language in YAML and other.options.get("file")
    }


# Running against a live gateway


@dataclass(frozen=True)
class Live:
    """What the examples run against, and as whom."""

    base_url: str
    metrics_url: str
    database_url: str
    admin_token: str
    account_id: str
    token: str


@dataclass(frozen=True)
class Outcome:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def report(self, block: Block, script: str) -> str:
        return (
            f"{block.id}: `{' '.join(self.command)}` exited {self.returncode} "
            f"after {self.seconds:.1f} s\n--- the example as run ---\n{script}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )


def as_run(block: Block, live: Live) -> str:
    """The block's text with the documented addresses replaced by the live ones."""
    script = block.text.replace(BASE_URL, live.base_url).replace(METRICS_URL, live.metrics_url)
    leftover = LOCAL_ADDRESSES.search(script)
    if leftover is not None:
        raise ValueError(
            f"{block.id}: `{leftover.group(0)}` is not written {BASE_URL} or {METRICS_URL}, "
            "so it cannot be pointed at the test's gateway"
        )
    return script


def environment(live: Live | None) -> dict[str, str]:
    """The environment of `./scripts/up`'s user: the venv's commands first on PATH, and the
    shell variables the documentation uses."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "CLOUDFLARE_", "GATEWAY_", "TRITON_", "REDIS_"))
        and key != "DATABASE_URL"
    }
    inherited["PATH"] = f"{Path(sys.executable).parent}:{inherited.get('PATH', '')}"
    if live is not None:
        inherited.update(
            ACCOUNT_ID=live.account_id,
            TOKEN=live.token,
            GATEWAY_ADMIN_TOKEN=live.admin_token,
            DATABASE_URL=live.database_url,
        )
    return inherited


def run_live(block: Block, kind: str, live: Live, directory: Path) -> Outcome:
    """Run a shell or Python block in `directory`, as a user of `./scripts/up` would, with
    `ACCOUNT_ID`, `TOKEN`, `GATEWAY_ADMIN_TOKEN` and `DATABASE_URL` set."""
    script = as_run(block, live)
    directory.mkdir(parents=True, exist_ok=True)
    environment_ = environment(live)
    if kind == "python":
        path = directory / "example.py"
        path.write_text(script + "\n")
        command = [sys.executable, str(path)]
    else:
        path = directory / "example.sh"
        path.write_text(script + "\n")
        command = ["bash", "-euo", "pipefail", str(path)]
        if "shows-errors" not in block.options:
            wrappers = directory / "bin"
            assert ":" not in str(wrappers), f"{wrappers} cannot go on PATH"
            wrappers.mkdir(exist_ok=True)
            curl = wrappers / "curl"
            curl.write_text(f'#!/bin/sh\nexec {shutil.which("curl")} --fail-with-body "$@"\n')
            curl.chmod(0o755)
            environment_["PATH"] = f"{wrappers}:{environment_['PATH']}"
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=directory,
            env=environment_,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        return Outcome(command, -1, str(error.stdout or ""), "timed out after 120 s", 120.0)
    return Outcome(command, done.returncode, done.stdout, done.stderr, time.monotonic() - started)


# Links between the documents

LINK = re.compile(r"\[[^\]]*\]\((?!https?://|mailto:)(?P<target>[^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's id for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    inside_block = False
    for line in path.read_text().splitlines():
        if fence(line) is not None:
            inside_block = not inside_block
        elif not inside_block and line.startswith("#"):
            base = anchor(line.lstrip("#"))
            name, count = base, 1
            while name in found:
                name, count = f"{base}-{count}", count + 1
            found.add(name)
    return found


def broken_links(path: Path) -> list[str]:
    """Links of a document to a file or heading of the repository that is not there."""
    broken = []
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    for found in LINK.finditer(text):
        target, _, fragment = found.group("target").partition("#")
        linked = (path.parent / target).resolve() if target else path
        missing = not linked.exists()
        if missing or (fragment and linked.suffix == ".md" and fragment not in anchors(linked)):
            broken.append(found.group(0))
    return broken
