"""Constrained decoding: the language an answer must belong to, and keeping it within a token budget.

- :mod:`.json_grammar`: JSON schema to GBNF (objects, arrays, strings, numbers, enums,
  anyOf, $ref) with bounded whitespace, and its budget variants for servers.
- :mod:`.pattern`: a small grammar IR (literal text, character sets, sequences,
  alternatives, repeats with a *role*, named rules), its shortest and longest sentence in
  bytes, and its rendering as llama.cpp GBNF. :mod:`.json_grammar` compiles JSON
  schemas into it, so the grammar sent to llama.cpp and the tracker below read one
  definition of the language.
- :mod:`.tracker`: an I/O-free incremental parser over that IR. Fed the generated text
  piece by piece, it knows the parse state and the shortest valid completion (bytes).
- :mod:`.budget`: grammars that fit a byte budget: the *narrowed* grammar for the rest
  of an answer (no new optional field, array item or whitespace; the open string must
  close in time; later values bounded), the *static* grammar or JSON schema for servers
  (every answer it allows fits ``max_tokens``), and the up-front minimum check.

A token is at least one byte, and the vocabularies llama.cpp runs have a token for every
single byte, so a budget of N tokens covers any N-byte text: budgets here are counted in
bytes of text still to write against tokens still allowed.
"""
