"""CPU twin of the text-embedding model: a BERT encoder in NumPy behind the plan's tensors."""
