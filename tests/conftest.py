"""Fixtures shared by the whole suite live in tests/fixtures/, one module per area."""

pytest_plugins = [
    "tests.fixtures.models",
    "tests.fixtures.servers",
    "tests.fixtures.embeddings",
    "tests.fixtures.openai_servers",
    "tests.fixtures.runs",
    "tests.fixtures.chroma",
]
