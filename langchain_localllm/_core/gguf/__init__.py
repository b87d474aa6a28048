"""GGUF model files, read without loading them: :mod:`.reader` is the one reader.

Metadata, the vocabulary and tensor sizes, every length bounded by the file: a malformed or
hostile file is an ``InvalidModelFileError``, fast and without large allocations.
"""
