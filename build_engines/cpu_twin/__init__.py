"""CPU twin of the TensorRT-LLM generation model: a tiny Llama in NumPy behind the same tensors."""
