"""BlobForge conversion worker: claims PDF jobs over the worker protocol and converts them to Markdown.

Standalone on purpose: it imports nothing from the server and needs only ``requests``
and ``pypdfium2`` (plus ``marker-pdf`` for the GPU converter).
"""

__version__ = "0.1.0"
