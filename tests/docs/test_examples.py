"""Every example in README.md and docs/ runs, or says why it is not run.

Each fenced block is a test item named by its file and line (`docs/api/openai.md:42`).
Shell and Python blocks run as a user of `./scripts/up` runs them, against a live gateway on
the SmolLM2 twins (its address replacing `http://127.0.0.1:8080`), each with a fresh
account and token in `ACCOUNT_ID` and `TOKEN`, the admin token in `GATEWAY_ADMIN_TOKEN`
and the gateway's database in `DATABASE_URL` (for `gateway …` commands); they run side by
side, started together when the first of them is reached. Helm blocks and YAML values
blocks are rendered with the chart by real Helm. The conventions are in `examples.py`.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from tests.docs.examples import (
    Block,
    Live,
    Outcome,
    all_blocks,
    as_run,
    broken_links,
    documents,
    helm_values,
    plan,
    run_live,
    set_values,
    shell_commands,
    values_files,
)
from tests.gateway_fixtures import ADMIN_TOKEN, GatewayProcess
from tests.helm.conftest import Render

BLOCKS = all_blocks()
LIVE = [b for b in BLOCKS if plan(b).kind in ("shell", "python") and plan(b).problem is None]
RENDERED = [b for b in BLOCKS if plan(b).kind in ("helm", "values") and plan(b).problem is None]
NOT_RUN = [b for b in BLOCKS if b not in LIVE and b not in RENDERED]
"""Blocks tagged `not-run: REASON`, and blocks that can neither run nor say why (which fail)."""
WORKERS = 4
"""Examples run side by side: most of their time is interpreters starting and the model
answering, which the twins batch."""


def ids(blocks: list[Block]) -> list[str]:
    return [block.id for block in blocks]


class LiveExamples:
    """Runs the selected live examples on a thread pool; `outcome(block)` waits for one."""

    def __init__(self, gateway: GatewayProcess, directory: Path) -> None:
        self._gateway = gateway
        self._directory = directory
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="docs-example")
        self._runs: dict[str, Future[tuple[str, Outcome]]] = {}

    def start(self, blocks: list[Block]) -> None:
        for block in blocks:
            if block.id not in self._runs:
                self._runs[block.id] = self._pool.submit(self._run, block)

    def outcome(self, block: Block) -> tuple[str, Outcome]:
        self.start([block])
        return self._runs[block.id].result()

    def _run(self, block: Block) -> tuple[str, Outcome]:
        assert plan(block).problem is None, "never run a block that cannot run here"
        account_id = self._gateway.create_account()
        live = Live(
            base_url=self._gateway.base_url,
            metrics_url=self._gateway.metrics_url.removesuffix("/metrics"),
            database_url=self._gateway.env["DATABASE_URL"],
            admin_token=ADMIN_TOKEN,
            account_id=account_id,
            token=str(self._gateway.create_token(account_id)["token"]),
        )
        directory = self._directory / block.id.replace("/", "_").replace(":", "_")
        return as_run(block, live), run_live(block, plan(block).kind, live, directory)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture(scope="module")
def live_examples(
    request: pytest.FixtureRequest,
    smollm2_gateway: GatewayProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveExamples]:
    """The selected live examples, all started at once."""
    examples = LiveExamples(smollm2_gateway, tmp_path_factory.mktemp("docs-examples"))
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if isinstance(item, pytest.Function)
        and item.originalname == "test_example_runs"
        and item.module is request.module
    ]
    examples.start([block for block in selected if isinstance(block, Block)])
    yield examples
    examples.close()


@pytest.mark.parametrize("block", LIVE, ids=ids(LIVE))
def test_example_runs(block: Block, live_examples: LiveExamples) -> None:
    """(`pytest -rP` shows each example's output, to refresh the documented one.)"""
    script, outcome = live_examples.outcome(block)
    print(outcome.stdout)
    if outcome.returncode != 0:
        pytest.fail(outcome.report(block, script), pytrace=False)
    missing = [text for text in block.expected if text not in outcome.stdout]
    if missing:
        pytest.fail(f"no {missing} in the output\n{outcome.report(block, script)}", pytrace=False)


@pytest.mark.parametrize("block", RENDERED, ids=ids(RENDERED))
def test_helm_example_renders(block: Block, render: Render) -> None:
    """A `helm install|upgrade|template` of the chart, or a values file for it, renders with
    the chart's defaults and passes Helm's lint (values.schema.json included)."""
    found = plan(block)
    if found.kind == "values":
        values = yaml.safe_load(block.text)
        assert isinstance(values, dict), f"{block.id}: a values file is a mapping"
        overrides = [values]
    else:
        overrides = [helm_values(words, values_files(block)) for words in found.helm]
    for override in overrides:
        try:
            rendered = render(override)
        except AssertionError as error:  # the render's lint found errors
            pytest.fail(f"{block.id}: the chart does not render with {override}:\n{error}")
        assert len(rendered) > 0, block.id


@pytest.mark.parametrize("block", NOT_RUN, ids=ids(NOT_RUN))
def test_a_block_that_is_not_run_says_why(block: Block) -> None:
    """A block the harness cannot run (another language, a command that needs what the test
    has not: a cluster, a GPU, Docker) must be tagged `not-run: REASON`."""
    problem = plan(block).problem
    if problem is not None:
        pytest.fail(problem, pytrace=False)


@pytest.mark.parametrize("document", documents(), ids=lambda path: path.name)
def test_links_between_documents_resolve(document: Path) -> None:
    assert broken_links(document) == []


def test_scripts_up_prints_the_shell_variables_the_examples_use() -> None:
    """The documentation's examples use `$ACCOUNT_ID`, `$TOKEN` and `$GATEWAY_ADMIN_TOKEN`:
    `./scripts/up` (`gateway up`) prints them as a line to paste."""
    from local_runtime.up import ready_message

    printed = ready_message("http://127.0.0.1:8080", "@twin/m", "acc", "gwk_t", "admin-t")
    assert "\n  export ACCOUNT_ID=acc TOKEN=gwk_t GATEWAY_ADMIN_TOKEN=admin-t\n" in printed
    assert "export ACCOUNT_ID=acc TOKEN=gwk_t\n" in ready_message("u", "m", "acc", "gwk_t")


def test_there_are_examples_of_every_kind() -> None:
    """The collection itself works: a parser that found nothing would pass everything."""
    assert len(LIVE) >= 10
    assert len(RENDERED) >= 2
    assert any(block.path == "README.md" for block in LIVE)


def test_an_untagged_block_that_cannot_run_fails_naming_its_line() -> None:
    block = Block("docs/x.md", 7, "bash", "curl -s http://127.0.0.1:8080/healthz\nkubectl get pods")
    problem = plan(block).problem
    assert problem is not None
    assert "docs/x.md:7, line 9: `kubectl`" in problem
    assert plan(Block("docs/x.md", 7, "js", "fetch(url)")).problem is not None
    assert plan(Block("docs/x.md", 7, "text not-run:", "…")).problem is not None
    assert plan(Block("docs/x.md", 7, "text not-run: output", "…")).problem is None
    assert plan(Block("docs/x.md", 7, "bash", "gateway up")).problem is not None


def test_shell_commands_are_read_as_the_shell_reads_them() -> None:
    script = (
        "ID=$(gateway accounts create acme --json | jq -r .id)   # a comment: kubectl\n"
        'curl -s http://x \\\n  -d \'{"a": 1,\n "b": 2}\' && echo "$ID"\n'
    )
    assert [(c.line, c.words[0]) for c in shell_commands(script)] == [
        (1, "ID="),
        (1, "gateway"),
        (1, "jq"),
        (2, "curl"),
        (4, "echo"),
    ]


def test_helm_set_values_are_typed_as_helm_types_them() -> None:
    assert set_values("a.b=true,a.c=3,d=x\\,y,e={1,two},f.g\\.h=null") == {
        "a": {"b": True, "c": 3},
        "d": "x,y",
        "e": [1, "two"],
        "f": {"g.h": None},
    }
    assert set_values("a=3", as_string=True) == {"a": "3"}
    words = ["helm", "install", "llm", "./helm/llm-gateway", "-n", "llm", "-f", "v.yaml"]
    assert helm_values([*words, "--set", "a.b=1"], {"v.yaml": "a: {b: 0, c: 2}"}) == {
        "a": {"b": 1, "c": 2}
    }
