"""The llamafile runtime: its access layer and its LangChain classes."""
