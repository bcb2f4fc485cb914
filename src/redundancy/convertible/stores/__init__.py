"""Convertible stores on disk: their formats, the conversion engine that reads and writes them,
and decoding. Every store here is also an ``ec`` store (``manifest.json``)."""
