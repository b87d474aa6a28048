"""The llamacpp runtime: its access layer and its LangChain classes."""
