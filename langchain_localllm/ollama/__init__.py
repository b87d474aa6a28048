"""The ollama runtime: its access layer and its LangChain classes."""
