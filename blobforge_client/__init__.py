"""The ``blobforge`` command: ingest documents into a BlobForge server and fetch the Markdown back.

Talks to the client API over HTTP only (``requests``); it imports nothing from the server.
"""

__version__ = "0.1.0"
