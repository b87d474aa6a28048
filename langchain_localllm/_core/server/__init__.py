"""What the server-backed classes (Ollama, llama-server/llamafile, OpenAI-compatible) share.

- :mod:`.connection`: the connection settings of every server class (``base_url``, one or a
  fleet; timeouts; headers; stream bounds).
- :mod:`.exchange`: the one exchange: a request, an I/O-free answer reader, one sync and one
  async loop; per-call argument checks; the server's errors translated.
- :mod:`.llm`, :mod:`.chat`, :mod:`.embeddings`: the server LLM, chat model and embeddings
  bases on top of it (a subclass builds the request and reads the answer).
"""
