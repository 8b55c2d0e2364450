"""What the gateway, the engine builder and the Triton models must agree on, in one place.

The TensorRT-LLM backend's tensor contract (`trtllm_backend`), the engines and their limits
(`engines`), the model repository's layout (`model_repository`) and the streaming
detokenizer (`streaming_decoder`). Standard library and `tokenizers` only: the repository
writer copies this package verbatim into every Python model's folder, where Triton's
isolated interpreter imports it, and the gateway imports it without the builder.
"""
