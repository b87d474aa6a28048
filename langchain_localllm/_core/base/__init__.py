"""The base classes and what every model class shares.

- :mod:`.llm`: ``LocalLLM``, the LLM base (one ``_iter_chunks`` protocol for sync and async).
- :mod:`.chat`: ``LocalChatModel`` and ``ChatDelta`` (invoke is the sum of the stream),
  reasoning split, usage and timings on the last chunk.
- :mod:`.embeddings`: ``LocalEmbeddings``: input checks, batching, sync and async.
- :mod:`.params`: argument checks that raise typed errors; :mod:`.peers`: constructor
  arguments of the classes ours replace (honoured, renamed, or warned as without effect).
- :mod:`.derived`: values computed from fields, recomputed when they change.
- :mod:`.threads`: blocking iterators (in-process streams) run without blocking asyncio,
  with a cancel token.
- :mod:`.timings`: the ``timings`` entry of ``generation_info``, one shape for every runtime.
- :mod:`.tokens`: counting tokens with the model's own tokenizer, else one estimate.
"""
