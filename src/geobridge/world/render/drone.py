"""Drone view: an oblique pinhole photograph from 80-180 m, looking at the location, rendered by
ray-marching the world's height field so that tall buildings show real parallax and facades.

The camera sits ``altitude / tan(pitch)`` metres behind the location (against the heading) and
looks at it; every pixel's ray is marched through the height band ``[0, max height]`` with steps of
about one cell, the first step below the surface is refined by bisection, and the hit is coloured
as a roof/ground (top-down colour, sun and shadow) or a facade (wall colour, windows, Lambert
light). Rays that never come down show the sky; distance adds aerial haze.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from geobridge.world.model import LandCover, World
from geobridge.world.render.heightfield import HeightPyramid, Rays, first_hit
from geobridge.world.render.raster import CellWindow, location_cell, nearest_index, to_uint8
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
ALTITUDE_RANGE_M = (80.0, 180.0)
PITCH_RANGE_DEG = (35.0, 60.0)
ROOF_CLEARANCE_M = 10.0
MAX_PITCH_DEG = 85.0
OUTSIDE_COLOUR = np.array((150.0, 160.0, 135.0), dtype=np.float32)


@dataclass(frozen=True)
class DronePose:
    """Where the drone is: altitude above the location, pitch below horizontal, heading of view."""

    altitude_m: float
    pitch_deg: float
    heading_deg: float

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator | None,
        altitude_m: float | None = None,
        pitch_deg: float | None = None,
        heading_deg: float | None = None,
    ) -> DronePose:
        """Fill the unspecified parts from ``rng`` (three draws are always made, so fixing one
        part does not change the others for the same seed)."""
        if rng is None:
            if None in (altitude_m, pitch_deg, heading_deg):
                raise ValueError("render_drone needs an rng to draw the unspecified camera pose")
            draws: tuple[float, ...] = (0.0, 0.0, 0.0)
        else:
            draws = tuple(float(v) for v in rng.random(3))
        (alt_lo, alt_hi), (pitch_lo, pitch_hi) = ALTITUDE_RANGE_M, PITCH_RANGE_DEG
        pose = cls(
            alt_lo + draws[0] * (alt_hi - alt_lo) if altitude_m is None else float(altitude_m),
            pitch_lo + draws[1] * (pitch_hi - pitch_lo) if pitch_deg is None else float(pitch_deg),
            360.0 * draws[2] if heading_deg is None else float(heading_deg) % 360.0,
        )
        if pose.altitude_m <= 0 or not 1.0 <= pose.pitch_deg <= 90.0:
            raise ValueError(f"drone altitude must be > 0 and pitch in [1, 90] degrees, got {pose}")
        return pose


@dataclass(frozen=True)
class Camera:
    """A pinhole camera in metres (east, north, up) relative to the ground point it looks at."""

    position: np.ndarray  # (3,)
    forward: np.ndarray
    right: np.ndarray
    up: np.ndarray
    tan_half_fov: float

    @classmethod
    def looking_at_target(cls, pose: DronePose, fov_deg: float) -> Camera:
        th, p = math.radians(pose.heading_deg), math.radians(pose.pitch_deg)
        back = pose.altitude_m / math.tan(p)
        forward = np.array((math.sin(th) * math.cos(p), math.cos(th) * math.cos(p), -math.sin(p)))
        right = np.array((math.cos(th), -math.sin(th), 0.0))
        position = np.array((-back * math.sin(th), -back * math.cos(th), pose.altitude_m))
        return cls(
            position,
            forward,
            right,
            np.cross(right, forward),
            math.tan(math.radians(fov_deg) / 2.0),
        )

    def ray_directions(self, size_px: int) -> np.ndarray:
        """Unit ray directions ``(size_px * size_px, 3)``, row-major from the top-left pixel."""
        s = (np.arange(size_px) + 0.5) / size_px * 2.0 - 1.0
        x = s[None, :] * self.tan_half_fov
        y = -s[:, None] * self.tan_half_fov
        d = self.forward[None, None, :] + x[..., None] * self.right + y[..., None] * self.up
        d = d.reshape(-1, 3)
        return d / np.linalg.norm(d, axis=1, keepdims=True)


def _rays(
    origin_rc: tuple[float, float], cam: np.ndarray, dirs: np.ndarray, cs: float, z_top: float
) -> tuple[Rays, np.ndarray]:
    """Downward rays in grid coordinates, ``t`` in metres from where they cross ``z_top``."""
    t0 = np.maximum(cam[2] - z_top, 0.0) / -dirs[:, 2]
    row0 = origin_rc[0] - (cam[1] + t0 * dirs[:, 1]) / cs
    col0 = origin_rc[1] + (cam[0] + t0 * dirs[:, 0]) / cs
    z0 = cam[2] + t0 * dirs[:, 2]
    rays = Rays(row0, col0, z0, -dirs[:, 1] / cs, dirs[:, 0] / cs, dirs[:, 2], z0 / -dirs[:, 2])
    return rays, t0


def _shade_hits(
    world: World,
    origin_rc: tuple[float, float],
    cam: np.ndarray,
    dirs: np.ndarray,
    t_bracket: np.ndarray,
    settings: RenderSettings,
) -> np.ndarray:
    """Colour of each ray's hit (float 0..255) before haze; ``t_bracket`` in metres."""
    cs = world.georef.cell_size_m
    r_t, c_t = origin_rc
    t_lo, t_hi = t_bracket[:, 0], t_bracket[:, 1]
    east, north, z = (cam[i] + t_hi * dirs[:, i] for i in range(3))
    rows, cols = r_t - north / cs, c_t + east / cs
    idx, inside = nearest_index(world, rows, cols)
    idx_before, _ = nearest_index(
        world, r_t - (cam[1] + t_lo * dirs[:, 1]) / cs, c_t + (cam[0] + t_lo * dirs[:, 0]) / cs
    )
    h = np.where(inside, world.height.ravel()[idx], 0.0)
    landcover = world.landcover.ravel()[idx]
    top_colour = world.colour.reshape(-1, 3)[idx]
    albedo = season_albedo(top_colour, landcover, settings.season)
    tol = 0.3 + (t_hi - t_lo) * np.abs(dirs[:, 2])
    facade = np.flatnonzero(inside & (h - z > tol) & (idx != idx_before))

    # Roofs and ground: top-down colour in sun or shadow (facades are overwritten below).
    shadow_map = SunShadowMap.of(world, settings)
    light = flat_light(shadow_map.at(idx), settings)
    colour = albedo * light[:, None]
    if facade.size:
        f = facade
        w = world.shape[1]
        crossed_col = (idx[f] % w) != (idx_before[f] % w)
        n_east = np.where(crossed_col, -np.sign(dirs[f, 0]), 0.0)
        n_north = np.where(crossed_col, 0.0, -np.sign(dirs[f, 1]))
        along = np.where(crossed_col, north[f], east[f])
        shadow_wall = shadow_map.at(idx_before[f], z[f])  # the shadow line of the cell in front
        wall_lit = wall_light(n_east, n_north, shadow_wall, settings)
        kind = landcover[f]
        is_building = kind == LandCover.BUILDING
        wall = 0.72 * albedo[f] * foliage_texture(idx[f], z[f])[:, None]  # crowns, bridge sides
        b = np.flatnonzero(is_building)
        wall[b] = wall_colour(world.building_id.ravel()[idx[f][b]], top_colour[f][b])
        windows = b[window_mask(z[f][b], along[b])]
        wall[windows] = 0.35 * wall[windows] + 0.65 * WINDOW_COLOUR
        wall[(kind == LandCover.TREE) & (z[f] < 2.5)] = TRUNK_COLOUR
        colour[f] = wall * wall_lit[:, None]
    colour[~inside] = OUTSIDE_COLOUR * flat_light(np.zeros(1, dtype=np.float32), settings)
    return colour


def _clear_of_roofs(
    pose: DronePose, pyramid: HeightPyramid, origin_rc: tuple[float, float], cs: float
) -> DronePose:
    """Keep the camera out of buildings: while anything within 5 m of it reaches up to
    ``ROOF_CLEARANCE_M`` below it, tilt steeper by 5 degrees (the camera moves closer to the
    location at the same altitude, which also clears the line of sight), and past 85 degrees
    climb over the obstacle instead."""
    reach = max(1, round(5.0 / cs))
    offsets = np.arange(-reach, reach + 1)
    for _ in range(16):
        camera = Camera.looking_at_target(pose, 60.0)
        row = origin_rc[0] - camera.position[1] / cs
        col = origin_rc[1] + camera.position[0] / cs
        rows, cols = np.meshgrid(row + offsets, col + offsets, indexing="ij")
        top = float(pyramid.height_at(rows, cols).max())
        if top + ROOF_CLEARANCE_M <= pose.altitude_m:
            break
        if pose.pitch_deg < MAX_PITCH_DEG:
            pose = replace(pose, pitch_deg=min(MAX_PITCH_DEG, pose.pitch_deg + 5.0))
        else:
            pose = replace(pose, altitude_m=top + ROOF_CLEARANCE_M)
    return pose


def render_drone(
    world: World,
    lat: float,
    lon: float,
    size_px: int = 128,
    rng: np.random.Generator | None = None,
    settings: RenderSettings = DEFAULT_SETTINGS,
    altitude_m: float | None = None,
    pitch_deg: float | None = None,
    heading_deg: float | None = None,
) -> np.ndarray:
    """Render an oblique drone photograph looking at (lat, lon): ``(size_px, size_px, 3)`` uint8.

    Unspecified pose parts are drawn from ``rng``: altitude uniform in 80-180 m, pitch in 35-60
    degrees below horizontal, heading (view direction, clockwise from north) in 0-360. The image's
    centre pixel looks at the location; its top is the far side (in the heading's direction). If
    the camera would sit inside or just above a tall building, it tilts steeper (moving closer)
    and, failing that, climbs until it clears it.
    """
    if size_px <= 0:
        raise ValueError(f"size_px must be positive, got {size_px}")
    pose = DronePose.draw(rng, altitude_m, pitch_deg, heading_deg)
    origin_rc = location_cell(world, lat, lon)
    cs = world.georef.cell_size_m
    pyramid = HeightPyramid.of(world)
    pose = _clear_of_roofs(pose, pyramid, origin_rc, cs)
    camera = Camera.looking_at_target(pose, settings.drone_fov_deg)
    dirs = camera.ray_directions(size_px)
    cam = camera.position
    down = dirs[:, 2] < -1e-3

    image = np.empty((len(dirs), 3), dtype=np.float32)
    if not down.all():
        up = dirs[~down]
        elevation = np.arcsin(np.clip(up[:, 2], -1.0, 1.0))
        image[~down] = sky_colour(elevation, np.arctan2(up[:, 0], up[:, 1]), settings)
    if down.any():
        d = dirs[down]
        t_ground = cam[2] / -d[:, 2]
        ground_rows = origin_rc[0] - (cam[1] + t_ground * d[:, 1]) / cs
        ground_cols = origin_rc[1] + (cam[0] + t_ground * d[:, 0]) / cs
        cam_rows = np.array([origin_rc[0] - cam[1] / cs])
        cam_cols = np.array([origin_rc[1] + cam[0] / cs])
        box = CellWindow.covering(
            np.concatenate([ground_rows, cam_rows]),
            np.concatenate([ground_cols, cam_cols]),
            margin=2,
        )
        max_h = pyramid.max_in(box)
        z_top = min(cam[2] - 1e-3, max_h + 0.5)
        rays, t0 = _rays(origin_rc, cam, d, cs, z_top)
        bracket = first_hit(pyramid, rays, np.hypot(d[:, 0], d[:, 1]) / cs) + t0[:, None]
        hit_colour = _shade_hits(world, origin_rc, cam, d, bracket, settings)
        haze = 1.0 - np.exp(-bracket[:, 1] / settings.haze_distance_m).astype(np.float32)
        haze_colour = sky_colour(np.zeros(1), np.zeros(1), settings)[0] * 0.95
        image[down] = hit_colour * (1.0 - haze[:, None]) + haze_colour * haze[:, None]
    return to_uint8(image.reshape(size_px, size_px, 3), settings.noise_std, rng)
