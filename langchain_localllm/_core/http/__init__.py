"""HTTP to local model servers: one client, written once for sync and async.

- :mod:`.client`: ``HttpClient`` (httpx ``Client``/``AsyncClient``): one URL or a fleet,
  privacy (no proxies, no redirects, only the configured endpoints), the resend rule.
- :mod:`.call`: one call without its I/O: what to send, what each answer or failure means,
  bounds (answer size, event size, overall deadline).
- :mod:`.errors`: what a server says went wrong, as typed errors with a fix.
- :mod:`.decoders`: incremental, linear-time, size-bounded NDJSON and SSE decoders.
- :mod:`.fleet`: least-in-flight dispatch, failover before the answer, backoff (no I/O).
"""
