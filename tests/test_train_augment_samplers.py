"""Joint augmentations keep views consistent; samplers keep locations unique and resumable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geobridge.data.samplers import UniqueLocationBatchSampler, gps_neighbours
from geobridge.data.transforms import JointAugment, flip_views, rotate_views
from geobridge.geo import offset_latlon
from geobridge.views import View


def test_quarter_turn_brings_east_to_the_top_and_to_panorama_column_zero():
    """A marker east of the centre: after one counter-clockwise quarter turn it is north of the
    centre in the satellite image, and straight ahead (column 0) in the panorama."""
    satellite = torch.zeros(3, 8, 8)
    satellite[:, 4, 7] = 1.0  # east edge (north-up: right = east)
    panorama = torch.zeros(3, 4, 16)
    panorama[:, 2, 4] = 1.0  # column W/4 looks east when column 0 looks north, clockwise
    out = rotate_views({View.SATELLITE: satellite, View.STREET: panorama}, 1)
    assert out[View.SATELLITE][0, 0, 4] == 1.0  # now at the top edge: "up" is the old east
    assert out[View.STREET][0, 2, 0] == 1.0  # now at column 0: the new heading is the old east
    # k turns compose, 4 turns are the identity
    two = rotate_views(rotate_views({View.SATELLITE: satellite, View.STREET: panorama}, 1), 1)
    assert torch.equal(two[View.SATELLITE], rotate_views({View.SATELLITE: satellite}, 2)[View.SATELLITE])
    assert torch.equal(rotate_views({View.STREET: panorama}, 4)[View.STREET], panorama)


def test_flip_mirrors_east_west_in_both_views():
    satellite = torch.zeros(3, 8, 8)
    satellite[:, 4, 7] = 1.0  # east
    panorama = torch.zeros(3, 4, 16)
    panorama[:, 2, 4] = 1.0  # azimuth 90 (east)
    out = flip_views({View.SATELLITE: satellite, View.STREET: panorama})
    assert out[View.SATELLITE][0, 4, 0] == 1.0  # west edge
    assert out[View.STREET][0, 2, 11] == 1.0  # column 11 of 16 ~ azimuth 270 (west): mirrored azimuth


def test_roll_matches_world_panorama_rendered_with_turned_heading():
    """On a real render: rolling the heading-0 panorama by -k*W/4 gives the panorama rendered with
    heading k*90 degrees, i.e. the orientation of the satellite turned counter-clockwise k times."""
    from geobridge.world.render import render_street
    from geobridge.world.sources_procedural import generate_procedural_world

    world = generate_procedural_world(seed=3, size_m=300.0, cell_size_m=1.0, regions=1)
    lat, lon = world.georef.cell_to_latlon(150.0, 150.0)
    north = render_street(
        world, float(lat), float(lon), height_px=16, rng=np.random.default_rng(0), heading_deg=0.0
    )
    pixels = torch.from_numpy(north.copy()).permute(2, 0, 1).float()
    for k in (1, 2, 3):
        turned = render_street(
            world, float(lat), float(lon), height_px=16, rng=np.random.default_rng(0), heading_deg=90.0 * k
        )
        rolled = rotate_views({View.STREET: pixels}, k)[View.STREET].permute(1, 2, 0).numpy()
        assert np.abs(rolled - turned.astype(np.float32)).mean() < 1.0, f"k={k}"
        wrong_way = torch.roll(pixels, shifts=k * pixels.shape[-1] // 4, dims=-1).permute(1, 2, 0).numpy()
        if k != 2:  # the opposite sign must not match (guards against a sign error)
            assert np.abs(wrong_way - turned.astype(np.float32)).mean() > 1.0


def test_joint_augment_uses_only_its_rng():
    images = {
        View.SATELLITE: torch.rand(3, 8, 8),
        View.STREET: torch.rand(3, 4, 16),
        View.DRONE: torch.rand(3, 8, 8),
    }
    augment = JointAugment(flip_p=0.5, rotate_p=0.5)
    a = augment(images, np.random.default_rng(7))
    b = augment(images, np.random.default_rng(7))
    assert all(torch.equal(a[v], b[v]) for v in images)
    with pytest.raises(ValueError, match="multiple of 4"):
        rotate_views({View.STREET: torch.rand(3, 4, 10)}, 1)


def test_batches_never_repeat_a_location_and_resume_mid_epoch():
    keys = ["a", "a", "a", "b", "c", "c", "d", "e", "f", "g", "h", "i"]
    sampler = UniqueLocationBatchSampler(keys, batch_size=4, seed=5)
    batches = sampler.global_batches(0)
    for batch in batches:
        assert len({keys[i] for i in batch}) == len(batch) == 4
    assert len(sampler) == len(batches) == 3
    assert sorted(i for b in batches for i in b) == list(range(12))  # every item once
    assert sampler.global_batches(1) != batches  # a new order each epoch ...
    assert UniqueLocationBatchSampler(keys, 4, seed=5).global_batches(1) == sampler.global_batches(
        1
    )  # ... from the seed
    first = next(iter(sampler))
    state = sampler.state_dict()
    fresh = UniqueLocationBatchSampler(keys, 4, seed=5)
    fresh.load_state_dict(state)
    assert list(fresh) == batches[1:] and first == batches[0]


def test_ranks_share_each_global_batch():
    keys = [str(i) for i in range(16)]
    whole = UniqueLocationBatchSampler(keys, 8, seed=1).global_batches(0)
    parts = [list(UniqueLocationBatchSampler(keys, 8, seed=1, rank=r, world_size=2)) for r in (0, 1)]
    assert [p0 + p1 for p0, p1 in zip(*parts)] == whole


def test_gps_neighbours_use_great_circle_distance():
    # at 60 N a degree of longitude is half a degree of latitude: 80 m east is nearer than
    # 100 m north, although in raw degrees (0.00144 vs 0.00090) it looks farther
    lat0, lon0 = 60.0, 24.0
    north = offset_latlon(lat0, lon0, 0.0, 100.0)
    east = offset_latlon(lat0, lon0, 80.0, 0.0)
    far = offset_latlon(lat0, lon0, 0.0, 1000.0)
    lat = np.array([lat0, north[0], east[0], far[0]])
    lon = np.array([lon0, north[1], east[1], far[1]])
    assert gps_neighbours(lat, lon, k=3)[0].tolist() == [2, 1, 3]


def test_gps_hard_negatives_fill_batches_with_neighbours():
    # two clusters of four points 5 km apart: with 3 neighbours per anchor every batch is one cluster
    rng = np.random.default_rng(0)
    points = [offset_latlon(60.0, 24.0, float(e), float(n)) for e, n in rng.uniform(0, 50, (4, 2))]
    points += [offset_latlon(60.0, 24.0, 5000.0 + float(e), float(n)) for e, n in rng.uniform(0, 50, (4, 2))]
    lat, lon = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    sampler = UniqueLocationBatchSampler(
        [str(i) for i in range(8)], 4, seed=2, lat=lat, lon=lon, neighbours=3, near=3
    )
    for epoch in range(3):
        batches = sampler.global_batches(epoch)
        assert len(batches) == 2  # the loop below cannot pass on no batches
        for batch in batches:
            assert sorted(batch) in ([0, 1, 2, 3], [4, 5, 6, 7])
        # both clusters, each item once
        assert sorted(i for batch in batches for i in batch) == list(range(8))


def test_an_orthophoto_drone_listed_as_north_up_turns_with_the_satellite():
    satellite = torch.rand(3, 8, 8)
    drone = satellite.clone()
    augment = JointAugment(flip_p=0.0, rotate_p=1.0, north_up=frozenset({View.SATELLITE, View.DRONE}))
    for seed in range(4):
        out = augment({View.SATELLITE: satellite, View.DRONE: drone}, np.random.default_rng(seed))
        assert not torch.equal(out[View.DRONE], drone)  # turned (k is 1, 2 or 3)
        assert torch.equal(out[View.DRONE], out[View.SATELLITE])
    oblique = JointAugment(flip_p=0.0, rotate_p=1.0)(
        {View.SATELLITE: satellite, View.DRONE: drone}, np.random.default_rng(0)
    )
    assert torch.equal(oblique[View.DRONE], drone)  # by default the drone is oblique: never turned
