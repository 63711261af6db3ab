"""Pinhole camera, class-specific objects drawn at projected source positions, and mp4 writing.

The camera sits at the microphone, looks along +x, has a 100-degree horizontal field of view and
square pixels (SPEC section 1). A mic-relative point (x, y, z) projects to
u = W/2 - f y / x, v = H/2 - f z / x with f = (W/2) / tan(hfov/2); it is on-screen when x > 0
and (u, v) falls inside the frame. Objects are drawn with a radius f * size / distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

HFOV_DEG = 100.0

# (shape, RGB colour) per class index; distractors use the same table or a grey generic shape
CLASS_STYLE: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("circle", (255, 105, 180)),  # female speech: pink disc
    ("circle", (30, 110, 255)),  # male speech: blue disc
    ("diamond", (255, 230, 0)),  # clapping: yellow diamond
    ("square", (230, 20, 20)),  # telephone: red square
    ("ring", (255, 140, 0)),  # laughter: orange ring
    ("wide", (150, 120, 90)),  # domestic: brown-grey box
    ("triangle", (20, 200, 60)),  # footsteps: green triangle
    ("tall", (120, 60, 20)),  # door: tall dark-brown slab
    ("square", (150, 50, 220)),  # music: purple square
    ("triangle_down", (0, 220, 220)),  # instrument: cyan inverted triangle
    ("tall_ellipse", (120, 180, 255)),  # water tap: light-blue drop
    ("ring", (230, 190, 40)),  # bell: gold ring
    ("cross", (245, 245, 245)),  # knock: white cross
)
GENERIC_SHAPES = ("circle", "square", "triangle", "diamond", "wide", "tall")
OBJECT_SIZE_M = 0.25  # half-size of a drawn object, metres


@dataclass(frozen=True)
class Camera:
    """A pinhole camera of ``width`` x ``height`` pixels and horizontal field of view ``hfov_deg``."""

    width: int
    height: int
    hfov_deg: float = HFOV_DEG

    @property
    def focal_px(self) -> float:
        return (self.width / 2.0) / np.tan(np.deg2rad(self.hfov_deg) / 2.0)

    def project(self, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Project mic-relative points.

        Args:
            rel: ``(n, 3)`` positions (x forward, y left, z up), metres.

        Returns:
            ``u (n,)``, ``v (n,)`` pixel coordinates (NaN behind the camera) and ``onscreen (n,)`` bool.
        """
        rel = np.atleast_2d(np.asarray(rel, dtype=np.float64))
        x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
        front = x > 1e-6
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.where(front, self.width / 2.0 - self.focal_px * y / x, np.nan)
            v = np.where(front, self.height / 2.0 - self.focal_px * z / x, np.nan)
        on = front & (u >= 0) & (u < self.width) & (v >= 0) & (v < self.height)
        return u, v, on

    def onscreen(self, rel: np.ndarray) -> np.ndarray:
        """``(n,)`` bool: is each mic-relative point inside the frame?"""
        return self.project(rel)[2]


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Boolean mask of ``shape`` of half-size ``r`` on offsets ``dx, dy`` from its centre (pixels)."""
    ax, ay = np.abs(dx), np.abs(dy)
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "ring":
        d2 = dx**2 + dy**2
        return (d2 <= r**2) & (d2 >= (0.55 * r) ** 2)
    if shape == "square":
        return (ax <= r) & (ay <= r)
    if shape == "diamond":
        return ax + ay <= r
    if shape == "wide":
        return (ax <= r) & (ay <= 0.5 * r)
    if shape == "tall":
        return (ax <= 0.5 * r) & (ay <= r)
    if shape == "tall_ellipse":
        return (dx / (0.6 * r)) ** 2 + (dy / r) ** 2 <= 1.0
    if shape == "triangle":  # apex up; its bounding box is centred on the point
        return (dy >= -r) & (dy <= r) & (ax <= (dy + r) / 2.0)
    if shape == "triangle_down":
        return (dy >= -r) & (dy <= r) & (ax <= (r - dy) / 2.0)
    if shape == "cross":
        return ((ax <= 0.3 * r) & (ay <= r)) | ((ay <= 0.3 * r) & (ax <= r))
    raise ValueError(f"unknown shape '{shape}'")


def draw_object(img: np.ndarray, u: float, v: float, r: float, shape: str, colour: np.ndarray) -> None:
    """Draw one filled shape centred at pixel coordinates ``(u, v)`` into ``img (H, W, 3)`` in place."""
    h, w = img.shape[:2]
    x0, x1 = int(np.floor(u - r)), int(np.ceil(u + r)) + 1
    y0, y1 = int(np.floor(v - r)), int(np.ceil(v + r)) + 1
    cx0, cx1, cy0, cy1 = max(x0, 0), min(x1, w), max(y0, 0), min(y1, h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    xs = np.arange(cx0, cx1) + 0.5 - u
    ys = np.arange(cy0, cy1) + 0.5 - v
    mask = shape_mask(shape, xs[None, :], ys[:, None], r)
    img[cy0:cy1, cx0:cx1][mask] = colour


def rgb_to_yuv(rgb: np.ndarray) -> np.ndarray:
    """BT.601 limited-range RGB -> YCbCr (what FFmpeg assumes for untagged yuv420p), ``(..., 3)`` float."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    m = np.array([[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]])
    return c @ m.T + np.array([16.0, 128.0, 128.0])


class YUVCanvas:
    """A frame held as yuv420p planes, drawn directly so that no colour conversion runs per frame.

    Args:
        background: ``(H, W, 3)`` uint8 RGB, H and W even.
    """

    def __init__(self, background: np.ndarray):
        h, w = background.shape[:2]
        if h % 2 or w % 2:
            raise ValueError(f"frame size must be even, got {w}x{h}")
        yuv = rgb_to_yuv(background)
        self.y = np.clip(np.round(yuv[..., 0]), 0, 255).astype(np.uint8)
        sub = yuv.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
        self.u = np.clip(np.round(sub[..., 1]), 0, 255).astype(np.uint8)
        self.v = np.clip(np.round(sub[..., 2]), 0, 255).astype(np.uint8)

    def copy(self) -> "YUVCanvas":
        out = object.__new__(YUVCanvas)
        out.y, out.u, out.v = self.y.copy(), self.u.copy(), self.v.copy()
        return out

    def draw(self, u: float, v: float, r: float, shape: str, rgb: tuple[int, int, int] | np.ndarray) -> None:
        """Draw a filled ``shape`` of half-size ``r`` pixels centred at ``(u, v)`` in colour ``rgb``."""
        yy, cb, cr = np.clip(np.round(rgb_to_yuv(np.asarray(rgb, dtype=np.float64))), 0, 255)
        draw_object(self.y[..., None], u, v, r, shape, np.array([yy], dtype=np.uint8))
        chroma = np.stack([self.u, self.v], axis=-1)
        draw_object(chroma, u / 2.0, v / 2.0, r / 2.0, shape, np.array([cb, cr], dtype=np.uint8))
        self.u, self.v = chroma[..., 0].copy(), chroma[..., 1].copy()

    def to_i420(self) -> np.ndarray:
        """``(H * 3 / 2, W)`` uint8, the layout of PyAV's ``yuv420p`` ndarrays."""
        h, w = self.y.shape
        return np.concatenate([self.y.ravel(), self.u.ravel(), self.v.ravel()]).reshape(h * 3 // 2, w)


def make_background(camera: Camera, rng: np.random.Generator, wall_depth_m: float, mic_height_m: float, ceiling_m: float) -> np.ndarray:
    """A room seen from the camera: ceiling, wall and floor bands, some furniture, a fixed texture.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    h, w = camera.height, camera.width
    f = camera.focal_px
    floor_v = int(np.clip(h / 2 + f * mic_height_m / wall_depth_m, 0, h))
    ceil_v = int(np.clip(h / 2 - f * (ceiling_m - mic_height_m) / wall_depth_m, 0, h))
    wall = rng.uniform(90, 200, 3)
    img = np.empty((h, w, 3), dtype=np.float64)
    img[:] = wall
    img[:ceil_v] = wall * 1.15
    img[floor_v:] = rng.uniform(40, 110, 3)
    ramp = np.linspace(0.85, 1.1, h)[:, None, None]
    img *= ramp
    for _ in range(int(rng.integers(2, 5))):  # furniture: rectangles standing on the floor
        fw, fh = rng.uniform(0.08, 0.25) * w, rng.uniform(0.1, 0.35) * h
        fx = rng.uniform(0, w - fw)
        img[int(max(0, floor_v - fh)) : floor_v, int(fx) : int(fx + fw)] = rng.uniform(30, 160, 3)
    img += rng.normal(0.0, 6.0, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def write_mp4(path: str | Path, frames: np.ndarray, fps: float, codec: str = "libx264", crf: int = 26) -> None:
    """Encode RGB frames as an mp4 with PyAV, single-threaded so that the bytes are reproducible.

    Args:
        path: output file (written as is; wrap in :func:`avseld.atomic.atomic_path`).
        frames: ``(T, H, W, 3)`` uint8 RGB, or ``(T, H * 3 / 2, W)`` uint8 yuv420p planes
            (:meth:`YUVCanvas.to_i420`); H and W even.
        fps: frame rate (29.97 is stored as 30000/1001).
        codec: ``libx264`` (H.264) or ``mpeg4``.
        crf: H.264 constant rate factor.
    """
    import av

    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate)
        yuv = frames.ndim == 3
        height = int(frames.shape[1]) * 2 // 3 if yuv else int(frames.shape[1])
        stream.width, stream.height = int(frames.shape[2]), height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": str(crf), "threads": "1"}
        else:
            stream.codec_context.bit_rate = 400_000
        stream.codec_context.time_base = Fraction(1, 1) / rate
        for i, arr in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="yuv420p" if yuv else "rgb24")
            frame.pts = i
            frame.time_base = stream.codec_context.time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
