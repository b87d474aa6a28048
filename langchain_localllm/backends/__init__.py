"""LLM backends: one module per runtime (llama.cpp and GPT4All in process; Ollama and llamafile over HTTP)."""
