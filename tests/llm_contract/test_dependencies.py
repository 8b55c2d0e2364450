"""The contract package needs only the standard library and `tokenizers`: Triton's isolated
interpreter imports the copy beside each Python model, and the gateway imports it alone."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import llm_contract

LIST_IMPORTED_PACKAGES = """
import importlib, json, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    importlib.import_module(name)
loaded = {name.partition(".")[0] for name in set(sys.modules) - before}
print(json.dumps(sorted(loaded - set(sys.stdlib_module_names))))
"""


def test_importing_every_contract_module_loads_nothing_but_tokenizers() -> None:
    modules = [
        f"llm_contract.{module.name}" for module in pkgutil.iter_modules(llm_contract.__path__)
    ]
    result = subprocess.run(
        [sys.executable, "-c", LIST_IMPORTED_PACKAGES, *modules],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert set(modules) >= {"llm_contract.trtllm_backend", "llm_contract.streaming_decoder"}
    assert set(json.loads(result.stdout)) <= {"llm_contract", "tokenizers"}
