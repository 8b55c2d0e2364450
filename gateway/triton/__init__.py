"""The backend transport: TensorRT-LLM generations on Triton over its gRPC stream.

One gRPC stream per request: the request is written, the stream half-closed, and the
decoupled model answers with one response per token until its final one ends the stream.
A generation nobody reads any more is ended with TensorRT-LLM's `stop` (same request id, on
a stream of its own), and its stream then ends as any other; the gRPC call is cancelled only
when the stop did not end it in time (see `token_stream.TokenStream`).

`client` owns the channels, `inputs` builds the tensors, `token_stream` reads a generation,
`errors` says what failed. It sits below the features (pyproject.toml's import contracts):
it knows sampling options (`gateway.sampling`), not runs, tokens, limits or usage.
"""
