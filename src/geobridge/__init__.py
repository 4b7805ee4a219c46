"""geobridge: multi-view, cross-modal geo-localization.

Say where a drone photo, a street-view panorama, a satellite or map tile, or a text
description was taken, by retrieving it among geo-tagged references.
"""

__version__ = "0.1.0"
