"""Plumbing shared by every backend: the LLM base class, model cache, threads, checks."""
