"""Retrieval: batched embedding, exact and FAISS search, persistent galleries.

``embed`` turns images, texts and dataset locations into normalised vectors; ``topk`` is the exact
chunked search; ``index`` wraps it and FAISS behind one interface; ``gallery`` is a directory
holding an index with its metadata, model reference and checksums, that ``geobridge locate`` and
the service search::

    from geobridge.retrieval import Gallery
    results = Gallery.load("demo/gallery").search(images=["drone.png"], view="drone", k=5)
    results[0].best.lat, results[0].best.lon
"""

from geobridge.retrieval.embed import embed_images, embed_locations, embed_texts
from geobridge.retrieval.gallery import Gallery, Match, QueryResult
from geobridge.retrieval.index import ExactIndex, FaissIndex, Index, create_index, load_index
from geobridge.retrieval.topk import TopK, topk

__all__ = [
    "embed_images",
    "embed_locations",
    "embed_texts",
    "Gallery",
    "Match",
    "QueryResult",
    "ExactIndex",
    "FaissIndex",
    "Index",
    "create_index",
    "load_index",
    "TopK",
    "topk",
]
