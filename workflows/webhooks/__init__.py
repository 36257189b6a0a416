"""Webhook delivery (SPEC §8): the pieces a dispatcher and the delivery tasks are built from.

- ``signing``: Standard Webhooks secrets and signature headers.
- ``ssrf``: which URLs may be called, and the address to connect to.
- ``transport``: a urllib3 client that connects only to checked addresses.
- ``retries``: what an attempt's outcome means and when to try again.

What a message says and who receives it is domain: ``domain.webhooks``.
"""
