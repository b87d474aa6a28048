"""Tool calling and structured output, written once for every chat model.

- :mod:`.calling`: ``bind_tools`` and ``with_structured_output`` on the chat base, the one
  ``tool_choice`` normaliser, the one forced-call schema, the answer ``Constraint`` and the
  ``ConstrainedDecoding`` strategy each runtime implements (a grammar in process, Ollama's
  ``format``, the server dialect's schema, or a typed refusal).
- :mod:`.schemas`: Pydantic models, TypedDicts, functions or JSON schemas as one output schema.
"""
