"""The text path of a Llama-2 engine in Triton: text in, text out around the generation model.

Upstream's inflight_batcher_llm shape: `preprocessing` (text -> ids), `postprocessing`
(ids -> text), the `ensemble` chaining them around `tensorrt_llm`, and `bls`, a decoupled
Python model that detokenizes incrementally. The package is copied into each Python model's
version folder, with the contract package beside it, and imported there as top-level
`text_models`, so it imports only itself (relatively), `llm_contract`, numpy, tokenizers and
the standard library.
"""
