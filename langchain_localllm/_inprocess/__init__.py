"""What the two in-process runtimes (``llamacpp``, ``gpt4all``) share.

Above ``prompts`` in the layers (it renders chat templates), below the runtimes.

- :mod:`.model_cache`: one process-wide cache of loaded models, each with its lock.
- :mod:`.turns`: calls take turns on a shared model one step at a time (a kept, half-read
  stream never blocks the next call).
- :mod:`.native_output`: silence and capture what native libraries print to stderr.
- :mod:`.chat`: ``InProcessChatModel``: messages to the model's prompt (its own template, in
  the bounded sandbox) and the runtime's text stream to chat deltas.
- :mod:`.constrained`: tool calls and structured answers decoded under our grammars.
"""
