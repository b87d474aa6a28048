"""Plumbing shared by every runtime; nothing here imports a runtime, ``prompts`` or ``_inprocess``.

- :mod:`.base`: the three base classes (``LocalLLM``, ``LocalChatModel``, ``LocalEmbeddings``)
  and what they share: argument checks, peer (drop-in) arguments, derived state, threads for
  blocking streams, the ``timings`` entry, token counting.
- :mod:`.http`: the one HTTP client (httpx, sync and async, one endpoint or a fleet), the
  I/O-free description of one call, typed server errors, bounded stream decoders, fleet dispatch.
- :mod:`.server`: server-backed models: connection settings, the one exchange every server
  LLM and chat model runs (one sync and one async loop), the server LLM/chat/embeddings bases.
- :mod:`.tools`: tool calling and structured output, written once on the chat base
  (``bind_tools``, ``with_structured_output``, one ``tool_choice`` normaliser, one forced-call
  schema, the constraint each runtime carries out), and output schemas.
- :mod:`.decoding`: constrained decoding: JSON schema to grammar, token budgets.
- :mod:`.gguf`: the one GGUF reader (metadata, vocabulary, tensor sizes), hostile-file safe.
- :mod:`.lazy`: lazy package exports; :mod:`.paths`: where files are kept on disk.

Layers, each importing only those before it: ``_core`` -> ``prompts`` -> ``_inprocess`` ->
the runtimes (``llamacpp``, ``gpt4all``, ``ollama``, ``llamafile``, ``openai_compatible``) ->
``chains``, ``rag``, ``callbacks``, ``cli``.
"""
