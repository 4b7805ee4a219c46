"""Dataset construction (GeoLoc's four stages) on real formats.

Stage 1 `seeds` (sliding window over geo-referenced orthomosaics), stage 2 `crop` (panoramas
inside footprints, reverse crops at several ground sizes), stage 3 `gates` + `dedup` (quality
gates, footprint de-duplication in metres), stage 4 satellite alignment + `describe` (text
anchors). `pipeline.run_build(config)` runs them resumably; `products` renders the embedded
world's geo-referenced products to run it on.
"""
