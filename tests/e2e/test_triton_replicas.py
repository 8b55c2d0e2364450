"""Several Triton replicas behind one target: the gateway spreads generations over all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from llm_contract.engines import ENGINE_SPECS
from local_runtime.triton_server import TritonServer
from tests.accounting import new_account, run, twin_metric
from tests.gateway_fixtures import GatewayFactory

pytestmark = pytest.mark.triton


@pytest.fixture
def two_tritons(cpu_model_repository: Path, tmp_path: Path) -> Iterator[list[TritonServer]]:
    with ExitStack() as stack:
        yield [
            stack.enter_context(
                TritonServer.on_free_ports(
                    cpu_model_repository,
                    log_path=tmp_path / f"tritonserver-{index}.log",
                    models=[spec.generation_model for spec in ENGINE_SPECS.values()],
                )
            )
            for index in range(2)
        ]


def test_generations_are_spread_over_every_address_the_target_resolves_to(
    gateway_factory: GatewayFactory, two_tritons: list[TritonServer]
) -> None:
    """As over a headless Service's pods (`dns:///…`): here two addresses in one target."""
    addresses = ",".join(f"127.0.0.1:{triton.grpc_port}" for triton in two_tritons)
    gateway = gateway_factory("sqlite", TRITON_GRPC_URL=f"ipv4:{addresses}")
    account = new_account(gateway)
    for _ in range(8):
        assert run(gateway, account, {"prompt": "hi", "max_tokens": 2}).status_code == 200
    served = [twin_metric(triton, "cpu_twin_requests_total") for triton in two_tritons]
    assert min(served) >= 2, served
