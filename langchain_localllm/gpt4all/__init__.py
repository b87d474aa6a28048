"""The gpt4all runtime: its access layer and its LangChain classes."""
