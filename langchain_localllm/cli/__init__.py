"""The ``localllm`` command: try a local model from the terminal in seconds.

``localllm run "The first man on the moon was"`` streams tokens from the built-in
demo model (random weights: gibberish, but a real llama.cpp run); ``--model``
points it at a real GGUF file or an Ollama model. ``localllm --help`` lists the
commands.
"""
