"""Embeddings backends: one module per runtime, sharing the LLMs' model cache and HTTP layer."""
