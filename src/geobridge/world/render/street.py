"""Street view: a 360-degree equirectangular panorama from 2 m above a road point (above the deck
when the point is on a bridge).

Column ``j`` looks along azimuth ``heading + j * 360 / W`` (clockwise from north), row ``i`` at
elevation ``90 - (i + 0.5) * 180 / H`` degrees. Each column is a ray marched outwards over the
height field (vectorised over all columns and distances); the angular top of every sample and its
running maximum (a "y-buffer", as in voxel-space terrain renderers) decide which sample each pixel
sees: a facade, a tree, the ground, or the sky when nothing is high enough. Facades get a colour
per building id, windows and Lambert light; ground and facades keep their sun shadows; water
mirrors some sky; distance fog makes depth readable.
"""

from __future__ import annotations

import numpy as np

from geobridge.world.model import LandCover, World
from geobridge.world.render.raster import location_cell, nearest_index, to_uint8
from geobridge.world.render.settings import RenderSettings
from geobridge.world.render.shading import (
    TRUNK_COLOUR,
    WINDOW_COLOUR,
    SunShadowMap,
    flat_light,
    foliage_texture,
    season_albedo,
    sky_colour,
    wall_colour,
    wall_light,
    window_mask,
)

DEFAULT_SETTINGS = RenderSettings()
EYE_HEIGHT_M = 2.0
# Sample distances along each azimuth (metres): dense near the viewer, geometric further out.
MARCH_DISTANCES_M = np.concatenate([np.linspace(0.5, 30.0, 60), np.geomspace(30.5, 700.0, 100)])


def render_street(
    world: World,
    lat: float,
    lon: float,
    height_px: int = 64,
    rng: np.random.Generator | None = None,
    settings: RenderSettings = DEFAULT_SETTINGS,
    heading_deg: float | None = None,
) -> np.ndarray:
    """Render the panorama at (lat, lon); returns ``(height_px, 2 * height_px, 3)`` uint8.

    Column 0 looks along ``heading_deg`` (drawn uniformly from ``rng`` when not given; one draw is
    always made so the noise stream does not depend on it). Rotating the heading by 90 degrees
    rolls the panorama by ``W / 4`` columns.
    """
    if height_px <= 0:
        raise ValueError(f"height_px must be positive, got {height_px}")
    drawn = float(rng.random()) * 360.0 if rng is not None else None
    if heading_deg is None:
        if drawn is None:
            raise ValueError("render_street needs an rng to draw the heading (or pass heading_deg)")
        heading_deg = drawn
    n_rows, n_cols = height_px, 2 * height_px
    cs = world.georef.cell_size_m
    eye_rc = location_cell(world, lat, lon)
    eye_idx, eye_inside = nearest_index(world, np.array([eye_rc[0]]), np.array([eye_rc[1]]))
    on_bridge = eye_inside[0] and world.landcover.ravel()[eye_idx[0]] == LandCover.BRIDGE
    eye_z = EYE_HEIGHT_M + (float(world.height.ravel()[eye_idx[0]]) if on_bridge else 0.0)

    step_deg = 360.0 / n_cols
    azimuth = np.radians(np.mod(heading_deg + np.arange(n_cols) * step_deg, 360.0))  # (W,)
    elevation = np.radians(90.0 - (np.arange(n_rows) + 0.5) * 180.0 / n_rows)  # (H,)
    dist = MARCH_DISTANCES_M
    n_k = len(dist)
    sin_a, cos_a = np.sin(azimuth)[:, None], np.cos(azimuth)[:, None]
    idx, inside = nearest_index(world, eye_rc[0] - dist * cos_a / cs, eye_rc[1] + dist * sin_a / cs)  # (W, K)
    h = np.where(inside, world.height.ravel()[idx], 0.0)
    top_angle = np.arctan2(h - eye_z, dist[None, :])
    horizon = np.maximum.accumulate(top_angle, axis=1)

    # First sample whose running top angle reaches each pixel's elevation (n_k => sky).
    offsets = 4.0 * np.arange(n_cols)
    first = np.searchsorted(
        (horizon + offsets[:, None]).ravel(),
        (elevation[:, None] + offsets[None, :]).ravel(),
        side="left",
    )
    k = first.reshape(n_rows, n_cols) - (np.arange(n_cols) * n_k)[None, :]
    sky = k >= n_k
    k = np.minimum(k, n_k - 1)
    cols_j = np.broadcast_to(np.arange(n_cols)[None, :], k.shape)

    cell = idx[cols_j, k]
    cell_before = idx[cols_j, np.maximum(k - 1, 0)]
    d_pix = dist[k]
    h_pix = h[cols_j, k]
    tan_el = np.tan(np.clip(elevation, -1.55, 1.55))[:, None]
    z_pix = eye_z + d_pix * tan_el
    landcover = world.landcover.ravel()[cell]
    top_colour = world.colour.reshape(-1, 3)[cell]
    albedo = season_albedo(top_colour, landcover, settings.season)
    # The ray shows a side (facade, crown, bridge side) if it was already below the top when it
    # reached the sample, and the top surface (a deck, a low roof) if it came down onto it.
    z_enter = eye_z + np.where(k > 0, dist[np.maximum(k - 1, 0)], 0.0) * tan_el
    facade = (h_pix > 0) & (z_enter < h_pix - 0.05) & inside[cols_j, k]

    image = np.zeros((n_rows, n_cols, 3), dtype=np.float32)
    ground = ~facade & ~sky
    shadow_map = SunShadowMap.of(world, settings)
    shadow = shadow_map.at(cell[ground])
    ground_colour = albedo[ground] * flat_light(shadow, settings)[:, None]
    az_grid = np.broadcast_to(azimuth[None, :], k.shape)
    el_grid = np.broadcast_to(elevation[:, None], k.shape)
    water = landcover[ground] == LandCover.WATER
    mirror = sky_colour(-el_grid[ground][water], az_grid[ground][water], settings)
    ground_colour[water] = 0.7 * ground_colour[water] + 0.3 * mirror
    image[ground] = ground_colour

    if facade.any():
        f = facade
        w = world.shape[1]
        sa, ca = np.sin(az_grid[f]), np.cos(az_grid[f])
        crossed_col = (cell[f] % w) != (cell_before[f] % w)
        n_east = np.where(crossed_col, -np.sign(sa), 0.0)
        n_north = np.where(crossed_col, 0.0, -np.sign(ca))
        along = np.where(crossed_col, d_pix[f] * ca, d_pix[f] * sa)
        shadow = shadow_map.at(cell_before[f], z_pix[f])  # the shadow line of the cell in front
        light = wall_light(n_east, n_north, shadow, settings)
        is_building = landcover[f] == LandCover.BUILDING
        bid = world.building_id.ravel()[cell[f]]
        foliage = 0.8 * albedo[f] * foliage_texture(cell[f], z_pix[f])[:, None]
        wall = np.where(is_building[:, None], wall_colour(bid, top_colour[f]), foliage)
        windows = is_building & window_mask(z_pix[f], along)
        wall = np.where(windows[:, None], 0.35 * wall + 0.65 * WINDOW_COLOUR, wall)
        trunk = (landcover[f] == LandCover.TREE) & (z_pix[f] < 2.5)
        wall = np.where(trunk[:, None], 0.6 * TRUNK_COLOUR + 0.4 * wall, wall)
        image[f] = wall * light[:, None]

    fog = (1.0 - np.exp(-d_pix / settings.fog_distance_m)).astype(np.float32)[..., None]
    haze = sky_colour(np.zeros(1), np.zeros(1), settings)[0]
    image = image * (1.0 - fog) + haze * fog
    image[sky] = sky_colour(el_grid[sky], az_grid[sky], settings)
    return to_uint8(image, settings.noise_std, rng)
