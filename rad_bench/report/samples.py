"""Sample strips (PNG) and animations (GIF) of one clip: the ground truth, its border coloured by each
frame's tag, next to every block's lowest-seed rollout, read from the run folder's ``samples/*.npz``."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rad_bench.tags import tag_frames
from rad_bench.utils import atomic_write_bytes

TAG_COLORS = {"in_window": (60, 170, 80), "revisit": (240, 140, 20), "novel": (140, 140, 140)}


def _first_seed_samples(run_dir: Path, blocks: set[str] | None = None) -> dict[str, Path]:
    """block -> its lowest-seed samples file (``samples/<block>-s<seed>.npz``); only ``blocks`` when given."""
    found: dict[str, tuple[int, Path]] = {}
    for f in (run_dir / "samples").glob("*-s*.npz"):
        block, seed = f.stem.rsplit("-s", 1)
        if blocks is not None and block not in blocks:
            continue
        if seed.isdigit() and (block not in found or int(seed) < found[block][0]):
            found[block] = (int(seed), f)
    return {b: found[b][1] for b in sorted(found)}


def _image(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)


def _sample_tags(ref: np.lib.npyio.NpzFile, clip: int, context: int, reach: int) -> list[str]:
    """Each generated frame's tag: the samples file's ``tags`` when it has them (written by the runner
    with the exact reach of the cell), else recomputed from ``places`` with a sliding ``reach``."""
    if "tags" in ref.files:
        try:
            return [str(t) for t in ref["tags"][clip]]
        except ValueError:  # an object array would need pickle, which a report never loads
            pass
    return tag_frames(ref["places"][clip].tolist(), context, reach)


KEY_H = 14  # px under the strip for the colour key


def _draw_key(draw: ImageDraw.ImageDraw, y: int) -> None:
    """The tag colours of the ground-truth borders, with their names, on one line at ``y``."""
    x = 2
    draw.text((x, y), "border = tag:", fill="black")
    x += 80
    for tag, color in TAG_COLORS.items():
        draw.rectangle([x, y + 1, x + 9, y + 10], fill=color)
        draw.text((x + 12, y), tag, fill="black")
        x += 18 + 6 * len(tag)


def sample_strip(
    run_dir: Path, out: Path, reach: int, clip: int = 0, max_frames: int = 16, blocks: set[str] | None = None
) -> Path | None:
    """PNG: ground truth (top, border coloured by tag) and each block's seed-0 rollout below it. ``blocks``:
    only these (one data point of a data sweep, whose blocks share the ground truth)."""
    first_seed = _first_seed_samples(run_dir, blocks)
    if not first_seed:
        return None
    ref = np.load(next(iter(first_seed.values())))
    context = int(ref["context"])
    gen_len = ref["generated"].shape[1]
    idx = np.linspace(0, gen_len - 1, min(max_frames, gen_len)).round().astype(int)
    tags = _sample_tags(ref, clip, context, reach)
    s = ref["truth"].shape[2]
    rows = [("ground truth", ref["truth"][clip, context:][idx])] + [
        (b, np.load(f)["generated"][clip][idx]) for b, f in first_seed.items()
    ]
    pad, label_w = 2, max(90, 6 * max(len(name) for name, _ in rows) + 8)  # the default font is ~6 px a character
    width = max(label_w + len(idx) * (s + 2 * pad), 260)  # the key needs ~250 px
    img = Image.new("RGB", (width, len(rows) * (s + 2 * pad) + 14 + KEY_H), "white")
    draw = ImageDraw.Draw(img)
    for r, (name, frames) in enumerate(rows):
        y = 14 + r * (s + 2 * pad)
        draw.text((2, y + s // 2 - 5), name, fill="black")
        for c, (fi, frame) in enumerate(zip(idx, frames)):
            x = label_w + c * (s + 2 * pad)
            if r == 0:
                draw.rectangle([x, y, x + s + 2 * pad - 1, y + s + 2 * pad - 1], fill=TAG_COLORS[tags[fi]])
                draw.text((x + 1, 1), str(fi), fill="black")
            img.paste(_image(frame), (x + pad, y + pad))
    _draw_key(draw, img.height - KEY_H + 2)
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return out


def _gif_frame(columns: list[tuple[str, np.ndarray]], t: int, tag: str, scale: int) -> Image.Image:
    """One GIF frame: a labelled tile per column, the ground-truth tile framed in its tag colour."""
    h, w = columns[0][1].shape[1] * scale, columns[0][1].shape[2] * scale
    pad, gap, top, bottom = 3, 6, 14, 14
    col = max(w + 2 * pad, 6 * max(len(name) for name, _ in columns) + 2)  # room for the full label
    img = Image.new("RGB", (len(columns) * (col + gap), top + h + 2 * pad + bottom), "white")
    draw = ImageDraw.Draw(img)
    for i, (name, frames) in enumerate(columns):
        x = i * (col + gap)
        draw.text((x + 1, 1), name, fill="black")
        if i == 0:
            draw.rectangle([x, top, x + w + 2 * pad - 1, top + h + 2 * pad - 1], fill=TAG_COLORS[tag])
        img.paste(_image(frames[t]).resize((w, h), Image.NEAREST), (x + pad, top + pad))
    draw.text((1, top + h + 2 * pad + 1), f"frame {t}: {tag}", fill="black")
    return img


def sample_gif(
    run_dir: Path, out: Path, reach: int, clip: int = 0, frame_ms: int = 250, blocks: set[str] | None = None
) -> Path | None:
    """Animated GIF of one clip: ground truth next to each block's lowest-seed rollout, frame by frame
    (``blocks``: only these, as in :func:`sample_strip`)."""
    files = _first_seed_samples(run_dir, blocks)
    if not files:
        return None
    data = {b: np.load(f) for b, f in files.items()}
    ref = next(iter(data.values()))
    context = int(ref["context"])
    truth = ref["truth"][clip, context:]
    columns = [("ground truth", truth)] + [(b, d["generated"][clip]) for b, d in data.items()]
    n = min(len(frames) for _, frames in columns)
    tags = _sample_tags(ref, clip, context, reach)
    scale = max(1, round(96 / max(truth.shape[1:3])))
    images = [_gif_frame(columns, t, tags[t], scale) for t in range(n)]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    atomic_write_bytes(out, buf.getvalue())
    return out
