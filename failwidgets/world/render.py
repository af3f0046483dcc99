"""Rasterisation of the world's images, vectorised over a batch.

One function, :func:`render_batch`, draws the pixels *and* returns the object and stripe masks from the
same boolean rasterisation, so the masks are exact by construction (no anti-aliasing: a pixel is
object or background). Shapes are implicit functions of the pixel centre in object coordinates
(scaled by the radius, rotated); textures of the backgrounds are smooth noise fields made by bilinear
interpolation of a coarse random grid (written here because no dependency of the package offers
vectorised 2-D value noise).

All geometry is expressed relative to the image size ``S`` so the world scales with ``image_size``.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from failwidgets.world.factors import FACTOR_VALUES

__all__ = ["Rendering", "render_batch", "draw_geometry", "render_image", "OBJECT_RGB", "BACKGROUND_RGB"]

#: base RGB of each object colour (0..255)
OBJECT_RGB = {
    "red": (215, 35, 35),
    "green": (40, 200, 75),
    "blue": (40, 75, 225),
    "yellow": (240, 215, 35),
}
#: base RGB of each background (its texture adds variation around it)
BACKGROUND_RGB = {
    "grass": (70, 120, 45),
    "sand": (200, 178, 128),
    "water": (45, 95, 165),
    "snow": (234, 238, 245),
}
_STRIPE_DARKEN = 0.3  # stripe pixels are the object colour times this
_CHUNK = 256  # images rendered together; fixed so that the random stream does not depend on split size

# radius (as a fraction of the image size) of small / large objects, and their relative jitter
_RADIUS = {"small": 7.0 / 64, "large": 12.0 / 64}
_RADIUS_JITTER = 0.06
# every shape fits in a disc of radius 1.15 r, so with this jitter every object stays inside its half
_CENTRE_JITTER_X = 1.0 / 64
_MAX_ROTATION = np.deg2rad(15.0)  # small, so that a square never becomes a diamond


class Rendering(NamedTuple):
    """Pixels and exact masks of a batch.

    images : uint8 (N, S, S, 3)
    object_masks : bool (N, S, S), the object's pixels (stripes included)
    stripe_masks : bool (N, S, S), the stripe pixels (a subset of the object; empty when plain)
    """

    images: np.ndarray
    object_masks: np.ndarray
    stripe_masks: np.ndarray


# --------------------------------------------------------------------------------------------------
# geometry
def draw_geometry(factors: dict[str, np.ndarray], image_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-image jitter of the object: centre, radius, rotation, stripe phase, colour jitter.

    Parameters
    ----------
    factors : dict factor name -> int64 (N,)
    image_size : int, S
    rng : numpy Generator

    Returns
    -------
    dict with ``cx, cy, radius, rotation, stripe_phase`` float32 (N,) (pixels / radians) and
    ``colour_jitter`` float32 (N, 3) (0..255 units).
    """
    n = len(factors["shape"])
    s = float(image_size)
    left = factors["position"] == FACTOR_VALUES["position"].index("left")
    cx = (np.where(left, 0.25, 0.75) + rng.uniform(-_CENTRE_JITTER_X, _CENTRE_JITTER_X, n)) * s
    cy = rng.uniform(0.32, 0.68, n) * s
    base_r = np.where(factors["size"] == FACTOR_VALUES["size"].index("large"), _RADIUS["large"], _RADIUS["small"])
    radius = base_r * s * rng.uniform(1 - _RADIUS_JITTER, 1 + _RADIUS_JITTER, n)
    rotation = rng.uniform(-_MAX_ROTATION, _MAX_ROTATION, n)
    stripe_phase = rng.uniform(0, 1, n)
    colour_jitter = rng.normal(0, 8.0, (n, 3))
    f32 = np.float32
    return {
        "cx": cx.astype(f32),
        "cy": cy.astype(f32),
        "radius": radius.astype(f32),
        "rotation": rotation.astype(f32),
        "stripe_phase": stripe_phase.astype(f32),
        "colour_jitter": colour_jitter.astype(f32),
    }


def _shape_mask(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Inside test of one shape in object units (radius 1), ``v`` pointing up. Shapes (B, S, S)."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if shape == "diamond":  # a rhombus taller than wide, so it never looks like a rotated square
        return np.abs(u) / 0.78 + np.abs(v) / 1.15 <= 1.0
    if shape == "cross":
        au, av = np.abs(u), np.abs(v)
        return ((au <= 0.34) & (av <= 1.0)) | ((av <= 0.34) & (au <= 1.0))
    if shape == "triangle":  # equilateral, pointing up, centred on its centroid, circumradius 1.15
        r_in = 0.575  # inradius = circumradius / 2; edges' outward normals at 270, 30 and 150 degrees
        inside = v >= -r_in
        for ang in (np.deg2rad(30.0), np.deg2rad(150.0)):
            inside &= u * np.cos(ang) + v * np.sin(ang) <= r_in
        return inside
    if shape == "star":  # five points, outer radius 1.15, inner radius 0.5
        r_out, r_in, k = 1.15, 0.5, 5
        phi = np.arctan2(v, u) - np.pi / 2
        sector = 2 * np.pi / k
        psi = np.mod(phi, sector)
        psi = np.minimum(psi, sector - psi)  # angle from the nearest point, in [0, pi/k]
        # boundary: the segment from the point (r_out, 0) to the inner vertex (r_in, pi/k)
        ax, ay = r_out, 0.0
        bx, by = r_in * np.cos(np.pi / k), r_in * np.sin(np.pi / k)
        ex, ey = bx - ax, by - ay
        boundary = (ax * ey - ay * ex) / (np.cos(psi) * ey - np.sin(psi) * ex)
        return u * u + v * v <= boundary * boundary
    raise ValueError(f"shape: expected one of {FACTOR_VALUES['shape']}, got {shape!r}")


# --------------------------------------------------------------------------------------------------
# backgrounds
def _fast_noise(rng: np.random.Generator, shape) -> np.ndarray:
    """Zero-mean unit-variance noise, float32: the sum of two uniform random bytes (triangular).

    Written here because numpy's Gaussian sampler costs ~5x more and dominated generation time; for
    pixel noise the triangular shape is indistinguishable.
    """
    n = int(np.prod(shape))
    u = np.frombuffer(rng.bytes(2 * n), np.uint8).reshape(2, n).astype(np.float32)
    # each byte has variance (256^2 - 1) / 12; the sum of two has twice that
    return ((u[0] + u[1] - 255.0) * np.float32(1.0 / np.sqrt(2 * (256**2 - 1) / 12))).reshape(shape)


def _interp_matrix(size: int, cells: int) -> np.ndarray:
    """(size, cells + 1) bilinear interpolation weights from a coarse grid to pixel centres."""
    pos = (np.arange(size) + 0.5) / size * cells
    i0 = np.clip(np.floor(pos).astype(int), 0, cells - 1)
    w = pos - i0
    m = np.zeros((size, cells + 1), np.float32)
    m[np.arange(size), i0] = 1 - w
    m[np.arange(size), i0 + 1] = w
    return m


def _smooth_noise(rng: np.random.Generator, b: int, s: int, cells_y: int, cells_x: int) -> np.ndarray:
    """Smooth value noise (B, S, S), roughly unit variance, features ~ S / cells pixels apart."""
    coarse = rng.standard_normal((b, cells_y + 1, cells_x + 1)).astype(np.float32)
    my, mx = _interp_matrix(s, cells_y), _interp_matrix(s, cells_x)
    return my @ coarse @ mx.T


def _backgrounds(codes: np.ndarray, s: int, rng: np.random.Generator) -> np.ndarray:
    """Textured backgrounds (B, S, S, 3) float32 in 0..255 units, one per background code.

    Every texture field is drawn for the whole batch (fixed random stream), then picked per image.
    """
    b = len(codes)
    yy = (np.arange(s, dtype=np.float32) + 0.5)[None, :, None]
    xx = (np.arange(s, dtype=np.float32) + 0.5)[None, None, :]
    fine = _fast_noise(rng, (b, s, s))
    blotch = _smooth_noise(rng, b, s, 4, 4)
    streak = _smooth_noise(rng, b, s, max(2, s // 16), max(8, s // 2))  # grass blades: vertical streaks
    phase = rng.uniform(0, 2 * np.pi, (b, 2, 1, 1)).astype(np.float32)
    period = rng.uniform(0.11, 0.16, (b, 1, 1)).astype(np.float32) * s
    waves = np.sin(2 * np.pi * yy / period + 1.3 * np.sin(2 * np.pi * xx / (0.4 * s) + phase[:, 0]) + phase[:, 1])

    out = np.empty((b, s, s, 3), np.float32)
    names = FACTOR_VALUES["background"]
    for code, name in enumerate(names):
        idx = np.flatnonzero(codes == code)
        if idx.size == 0:
            continue
        base = np.asarray(BACKGROUND_RGB[name], np.float32)
        if name == "grass":
            light = 14 * blotch[idx] + 18 * streak[idx] + 9 * fine[idx]
            tint = np.asarray([0.7, 1.0, 0.5], np.float32)
        elif name == "sand":
            light = 12 * blotch[idx] + 7 * fine[idx]
            tint = np.asarray([1.0, 0.9, 0.7], np.float32)
        elif name == "water":
            light = 22 * waves[idx] + 6 * blotch[idx] + 4 * fine[idx]
            tint = np.asarray([0.6, 0.8, 1.0], np.float32)
        else:  # snow: near-white, faint bluish shading
            light = 5 * blotch[idx] + 3 * fine[idx]
            tint = np.asarray([0.9, 0.95, 1.0], np.float32)
        out[idx] = base + light[..., None] * tint
    return out


# --------------------------------------------------------------------------------------------------
def render_batch(
    factors: dict[str, np.ndarray],
    geometry: dict[str, np.ndarray],
    image_size: int,
    rng: np.random.Generator | None = None,
    *,
    brightness_jitter: float = 0.15,
    pixel_noise: float = 5.0,
    background_rgb: Sequence[float] | None = None,
) -> Rendering:
    """Draw a batch of images and their exact masks.

    Parameters
    ----------
    factors : dict factor name -> int64 (N,)
    geometry : dict from :func:`draw_geometry` (N images)
    image_size : int, S
    rng : numpy Generator for textures and noise (required unless ``background_rgb`` is given and
        both jitters are 0)
    brightness_jitter, pixel_noise : image-level brightness factor U(1-j, 1+j) and per-pixel N(0, sd)
    background_rgb : optional constant background colour instead of the textured backgrounds
        (for teaching and tests)

    Returns
    -------
    Rendering(images uint8 (N, S, S, 3), object_masks bool (N, S, S), stripe_masks bool (N, S, S))
    """
    n = len(factors["shape"])
    s = int(image_size)
    images = np.empty((n, s, s, 3), np.uint8)
    obj = np.zeros((n, s, s), bool)
    stripes = np.zeros((n, s, s), bool)
    pix = np.arange(s, dtype=np.float32) + 0.5
    shapes, colours = FACTOR_VALUES["shape"], FACTOR_VALUES["colour"]
    colour_table = np.asarray([OBJECT_RGB[c] for c in colours], np.float32)
    striped_code = FACTOR_VALUES["texture"].index("striped")
    period = max(4.0, 6.0 * s / 64)
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(n, start + _CHUNK))
        b = sl.stop - sl.start
        g = {k: v[sl] for k, v in geometry.items()}
        f = {k: v[sl] for k, v in factors.items()}
        r = g["radius"][:, None, None]
        dx = pix[None, None, :] - g["cx"][:, None, None]
        dy = pix[None, :, None] - g["cy"][:, None, None]
        c, sn = np.cos(g["rotation"])[:, None, None], np.sin(g["rotation"])[:, None, None]
        xr = c * dx + sn * dy  # object frame, pixels
        yr = -sn * dx + c * dy
        u, v = xr / r, -yr / r  # object units, v up
        m = np.zeros((b, s, s), bool)
        for code, name in enumerate(shapes):
            idx = np.flatnonzero(f["shape"] == code)
            if idx.size:
                m[idx] = _shape_mask(name, u[idx], v[idx])
        t = (xr + yr) / np.sqrt(2.0) / period + g["stripe_phase"][:, None, None]
        st = m & (np.mod(t, 1.0) < 0.5) & (f["texture"] == striped_code)[:, None, None]

        if background_rgb is None:
            img = _backgrounds(f["background"], s, rng)
        else:
            img = np.broadcast_to(np.asarray(background_rgb, np.float32), (b, s, s, 3)).copy()
        col = (colour_table[f["colour"]] + g["colour_jitter"])[:, None, None, :]  # (b, 1, 1, 3)
        np.copyto(img, col, where=m[..., None])
        np.copyto(img, _STRIPE_DARKEN * col, where=st[..., None])
        if brightness_jitter > 0:
            img *= rng.uniform(1 - brightness_jitter, 1 + brightness_jitter, (b, 1, 1, 1)).astype(np.float32)
        if pixel_noise > 0:
            img += np.float32(pixel_noise) * _fast_noise(rng, img.shape)
        img += 0.5  # round half up, then truncate in the cast
        np.clip(img, 0, 255, out=img)
        images[sl] = img.astype(np.uint8)
        obj[sl] = m
        stripes[sl] = st
    return Rendering(images, obj, stripes)


def render_image(
    shape: str = "circle",
    colour: str = "red",
    size: str = "large",
    texture: str = "plain",
    background: str = "grass",
    position: str = "left",
    *,
    image_size: int = 64,
    seed: int = 0,
    jitter: bool = True,
    background_rgb: Sequence[float] | None = None,
) -> Rendering:
    """Render one image from explicit factor values (for teaching and for decoders).

    Parameters
    ----------
    shape, colour, size, texture, background, position : str
        Value names (see ``failwidgets.world.FACTOR_VALUES``).
    image_size : int
    seed : int, seed of the jitter and textures
    jitter : bool, if False the object is centred in its half, upright, at the nominal radius, with
        no brightness or pixel noise (the background texture is still drawn)
    background_rgb : optional constant background colour instead of the textured background

    Returns
    -------
    Rendering with images (1, S, S, 3), object_masks (1, S, S), stripe_masks (1, S, S)
    """
    from failwidgets.world.factors import value_index

    values = dict(shape=shape, colour=colour, size=size, texture=texture, background=background, position=position)
    factors = {k: np.asarray([value_index(k, v, k)], np.int64) for k, v in values.items()}
    rng = np.random.default_rng(seed)
    geometry = draw_geometry(factors, image_size, rng)
    if not jitter:
        s = float(image_size)
        geometry["cx"][:] = (0.25 if position == "left" else 0.75) * s
        geometry["cy"][:] = 0.5 * s
        geometry["radius"][:] = _RADIUS[size] * s
        geometry["rotation"][:] = 0.0
        geometry["colour_jitter"][:] = 0.0
    return render_batch(
        factors,
        geometry,
        image_size,
        rng,
        brightness_jitter=0.15 if jitter else 0.0,
        pixel_noise=5.0 if jitter else 0.0,
        background_rgb=background_rgb,
    )
