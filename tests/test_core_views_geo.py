"""Views, direction names and geographic maths."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from geobridge import geo
from geobridge.views import GEOBRIDGE_DIRECTIONS, Direction, View, all_directions, parse_directions


def test_direction_names_follow_the_papers_letters():
    assert [d.name for d in GEOBRIDGE_DIRECTIONS] == [
        "D2S",
        "S2D",
        "D2P",
        "P2D",
        "P2S",
        "S2P",
        "T2D",
        "T2P",
        "T2S",
    ]
    assert Direction.parse("drone->satellite") == Direction(View.DRONE, View.SATELLITE)
    assert Direction.parse("p2d") == Direction(View.STREET, View.DRONE)


@pytest.mark.parametrize("bad", ["X2S", "D2T", "D2D", "drone", ""])
def test_bad_directions_are_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match="direction|view"):
        Direction.parse(bad)


def test_unknown_view_message_lists_the_valid_ones():
    with pytest.raises(ValueError, match="drone, street, satellite"):
        View.parse("thermal")


def test_all_directions_counts():
    dirs = parse_directions("all", [View.DRONE, View.STREET, View.SATELLITE, View.TEXT])
    assert len(dirs) == 6 + 3
    assert len(all_directions([View.DRONE, View.SATELLITE])) == 2


def test_haversine_known_distance():
    # One degree of latitude on a 6371 km sphere.
    assert geo.haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(math.pi * 6_371_000 / 180, rel=1e-12)
    # Helsinki -> Tallinn is about 80-85 km.
    assert 75_000 < geo.haversine_m(60.1699, 24.9384, 59.4370, 24.7536) < 90_000


def test_haversine_broadcasts():
    d = geo.haversine_m(np.zeros(3), np.zeros(3), np.array([0.0, 0.001, 0.0]), np.array([0.0, 0.0, 0.001]))
    assert d.shape == (3,) and d[0] == 0.0 and d[1] > 100


@given(
    lat=st.floats(-70, 70),
    lon=st.floats(-170, 170),
    east=st.floats(-2000, 2000),
    north=st.floats(-2000, 2000),
)
def test_local_projection_round_trip_and_distance(lat, lon, east, north):
    proj = geo.LocalProjection(lat, lon)
    la, lo = proj.to_latlon(east, north)
    x, y = proj.to_xy(la, lo)
    assert x == pytest.approx(east, abs=1e-6) and y == pytest.approx(north, abs=1e-6)
    # The flat step agrees with the WGS84 geodesic distance to within 0.5% at this scale.
    d = geo.wgs84().inv(lon, lat, lo, la)[2]
    assert d == pytest.approx(math.hypot(east, north), rel=5e-3, abs=0.05)


def test_footprint_overlap_is_measured_in_metres():
    a = geo.Footprint.around(60.0, 25.0, 100.0)
    assert a.width_m == pytest.approx(100.0, rel=1e-9) and a.height_m == pytest.approx(100.0, rel=1e-9)
    lat, lon = geo.offset_latlon(60.0, 25.0, 50.0, 0.0)  # shifted half a footprint east
    b = geo.Footprint.around(float(lat), float(lon), 100.0)
    assert a.overlap_fraction(b) == pytest.approx(0.5, rel=1e-6)
    far = geo.Footprint.around(61.0, 25.0, 100.0)
    assert a.overlap_fraction(far) == 0.0


@pytest.mark.parametrize("lat", [45.0, -45.0, 0.0, 70.0])
def test_footprint_is_its_size_on_the_wgs84_ellipsoid(lat):
    # a sphere made an 80 m crop 80.22 m east-west at 45 degrees
    box = geo.Footprint.around(lat, 7.0, 80.0)
    geod = geo.wgs84()
    assert geod.inv(box.west, lat, box.east, lat)[2] == pytest.approx(80.0, abs=1e-3)
    assert geod.inv(7.0, box.south, 7.0, box.north)[2] == pytest.approx(80.0, abs=1e-3)
    assert box.width_m == pytest.approx(80.0, abs=1e-3) and box.height_m == pytest.approx(80.0, abs=1e-3)
    assert box.centre[0] == pytest.approx(lat, abs=1e-9)  # north and south edges 40 m either side
    lats, lons = geo.offset_latlon(np.full((2, 3), lat), 7.0, np.array([0.0, 30.0, -30.0]), 40.0)
    assert lats.shape == lons.shape == (2, 3)
    for row_lat, row_lon in zip(lats, lons):
        azimuth, _, metres = geod.inv(np.full(3, 7.0), np.full(3, lat), row_lon, row_lat)
        np.testing.assert_allclose(metres, np.hypot([0.0, 30.0, 30.0], 40.0), atol=1e-3)


def test_xyz_tiles_round_trip():
    x, y = geo.latlon_to_tile(60.17, 24.94, 16)
    box = geo.tile_bounds(x, y, 16)
    assert box.contains(60.17, 24.94)
    # A zoom-16 tile is about 611 m * cos(lat) wide.
    assert box.width_m == pytest.approx(256 * geo.ground_resolution_m(60.17, 16), rel=0.01)
    assert geo.zoom_for_resolution(60.17, 1.0) == 17


def test_utm_zone():
    assert geo.utm_epsg(60.17, 24.94) == 32635
    assert geo.utm_epsg(-33.9, 151.2) == 32756
