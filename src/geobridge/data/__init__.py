"""Datasets, transforms and samplers that feed training and evaluation.

Submodules are imported where they are used (``geobridge.data.manifest``,
``geobridge.data.transforms``, ``geobridge.data.samplers``, ``geobridge.data.benchmarks``) so
importing this package stays cheap and pulls in neither torch nor the benchmark loaders.
"""
