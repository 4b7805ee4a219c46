"""Retrieval: batched embedding, exact and FAISS search, persistent galleries.

``embed`` turns images, texts and dataset locations into normalised vectors; ``topk`` is the exact
chunked search; ``index`` wraps it and FAISS behind one interface; ``gallery`` is a directory
holding an index with its metadata, model reference and checksums, that ``locate`` and the
service search.
"""

from geobridge.retrieval.topk import TopK, topk

__all__ = ["TopK", "topk"]
