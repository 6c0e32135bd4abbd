"""The one conversion pipeline: bytes in, encoded outputs out.

Imports only ``core``, ``options`` and ``errors`` (plus ijson, pybase64 and pydicom's data);
never anyio and never a front end (checked by tests/test_layout.py).
"""
