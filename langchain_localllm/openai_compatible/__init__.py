"""Any OpenAI-compatible inference server (vLLM, SGLang, LM Studio, llama-server, ...) and fleets of them."""
