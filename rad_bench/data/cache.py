"""Episode data for the real environments: a checksummed shard store on disk and the in-memory
clip sampler shared by ``memory_maze``, ``crafter`` and the public-dataset readers.

**Shard store.** Generated episodes live in
``<root>/<dataset>/<config-hash>/<split>/shard-00000.npz, ...`` next to a ``manifest.json``
holding the generation config, the seed, the counts and the sha256 of every shard. ``<root>`` is
the ``cache_dir`` config key if set, else ``$RAD_BENCH_CACHE``, else ``~/.cache/rad_bench``; the
hash covers only what changes the content of an episode, so asking for more episodes reuses the
ones already there. Each shard is written atomically (temp file + rename) and recorded in the
manifest as soon as it is done, so an interrupted generation resumes where it stopped. Processes that
ask for the same split at once (a run's ``--workers`` helpers) take turns under a lock file beside
its folder: one generates, the others wait and read. A shard
whose checksum does not match, or that cannot be read, is reported (a
:class:`CorruptShardWarning` naming the file), deleted and generated again: it is never used.
Generation runs in ``workers`` spawned processes (spawn, not fork: MuJoCo/EGL contexts do not
survive a fork; a script that builds a dataset with ``workers > 1`` needs the usual
``if __name__ == "__main__":`` guard, which the ``rad-bench`` command has) with a tqdm bar on a
terminal.

**Episodes in memory.** :class:`EpisodeDataset` keeps frames as uint8 ``(E, T, 3, H, W)`` plus, per
frame, a one-hot *motion* (the action that led into the frame; zeros for the first frame), a place
id for revisit tags and an optional place-code index. ``sample`` gathers clips and converts only
the batch to float. Clips are index sequences into an episode, which is how the retrieval task is
expressed: with ``retrace`` a clip plays ``k`` frames forward and then the same frames backward
(:func:`bounce`), and a frame reached by playing backward carries the *negated* one-hot of the
action it undoes (:func:`motion_codes`).
"""

from __future__ import annotations

import hashlib
import io
import json
import multiprocessing as mp
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout
from torch import Tensor
from tqdm.auto import tqdm

from rad_bench.data import DataError, Dataset, Demand, EvalSet, check_episodes
from rad_bench.utils import atomic_write_bytes, write_json

MANIFEST = "manifest.json"
Arrays = dict[str, np.ndarray]


class CorruptShardWarning(UserWarning):
    """A shard on disk failed its checksum or could not be read; it is regenerated."""


class ShardError(DataError, RuntimeError):
    """A shard cannot be used (checksum mismatch, unreadable, missing keys)."""


# --------------------------------------------------------------------------------------------
#                                   Shard store
# --------------------------------------------------------------------------------------------


def cache_root(cache_dir: str | None = None) -> Path:
    """``cache_dir`` (config key) > ``$RAD_BENCH_CACHE`` > ``~/.cache/rad_bench``."""
    root = cache_dir or os.environ.get("RAD_BENCH_CACHE") or "~/.cache/rad_bench"
    return Path(root).expanduser()


def config_hash(config: Mapping[str, Any]) -> str:
    """12 hex digits of the sha256 of the config as canonical JSON."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def to_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def from_npz(data: bytes, required: tuple[str, ...] = ()) -> Arrays:
    """Every array of an npz held in memory; reading each member checks its zip CRC, so a flipped
    byte fails here even without a manifest entry."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001  a damaged file fails in many ways (zlib, zip CRC, header parsing)
        raise ShardError(f"unreadable npz ({type(e).__name__}: {e})") from None
    if missing := [k for k in required if k not in arrays]:
        raise ShardError(f"missing arrays {missing} (has {sorted(arrays)})")
    return arrays


def write_shard(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Write atomically; return the manifest entry."""
    data = to_npz(arrays)
    atomic_write_bytes(path, data)
    frames = int(len(arrays["frames"])) if "frames" in arrays else 0
    return {"sha256": sha256(data), "bytes": len(data), "frames": frames}


def _make_and_write(make: Callable[[int], Arrays], folder: Path, name: str, index: int) -> tuple[int, dict[str, Any]]:
    """Worker body (top level, so spawn can pickle it): generate shard ``index`` and write it."""
    return index, write_shard(folder / name, make(index))


class ShardStore:
    """One split (e.g. ``train-s0``) of one generation config: numbered shards + manifest.

    ``meta`` (dataset, config, seed, split) is written into the manifest and must match an
    existing one, so two configurations can never share a folder."""

    def __init__(self, folder: Path, meta: Mapping[str, Any], required: tuple[str, ...] = ("frames",)) -> None:
        self.folder = Path(folder)
        self.meta = json.loads(json.dumps(dict(meta), default=str))  # as it reads back from JSON
        self.required = required
        self.entries: dict[str, dict[str, Any]] = {}

    @staticmethod
    def name(i: int) -> str:
        return f"shard-{i:05d}.npz"

    def path(self, i: int) -> Path:
        return self.folder / self.name(i)

    # ---- manifest -------------------------------------------------------------------------

    def read_manifest(self) -> None:
        f = self.folder / MANIFEST
        self.entries = {}
        if not f.is_file():
            return
        try:
            m = json.loads(f.read_text())
            stored = {k: m[k] for k in self.meta}
            entries = dict(m["shards"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            warnings.warn(
                f"{f}: unreadable manifest ({e}); every shard will be re-verified by reading it",
                CorruptShardWarning,
                stacklevel=3,
            )
            return
        if stored != self.meta:
            raise ShardError(f"{f}: manifest describes {stored}, not {self.meta}; use another cache_dir or delete it")
        self.entries = entries

    def write_manifest(self) -> None:
        names = sorted(self.entries)
        counts = {"shards": len(names), "frames": sum(int(self.entries[n].get("frames", 0)) for n in names)}
        shards = {n: self.entries[n] for n in names}
        write_json(self.folder / MANIFEST, {**self.meta, "counts": counts, "shards": shards})

    # ---- reading --------------------------------------------------------------------------

    def read(self, i: int) -> Arrays:
        """Shard ``i``, verified against the manifest (or, without an entry, by reading every
        array); raises :class:`ShardError` naming the file."""
        path, name = self.path(i), self.name(i)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ShardError(f"{path}: cannot read ({e})") from None
        entry = self.entries.get(name)
        got = sha256(data)
        if entry is not None and entry.get("sha256") != got:
            raise ShardError(
                f"{path}: checksum mismatch (manifest sha256 {entry.get('sha256', '?')[:12]}..., file {got[:12]}..., "
                f"{len(data)} bytes): corrupt or truncated"
            )
        try:
            arrays = from_npz(data, self.required)
        except ShardError as e:
            raise ShardError(f"{path}: {e}") from None
        if entry is None:  # written (atomically) but not yet recorded, e.g. after a kill: adopt it
            frames = int(len(arrays["frames"])) if "frames" in arrays else 0
            self.entries[name] = {"sha256": got, "bytes": len(data), "frames": frames}
        return arrays

    # ---- the one entry point --------------------------------------------------------------

    def load(self, n: int, make: Callable[[int], Arrays], workers: int = 1, desc: str = "generate") -> list[Arrays]:
        """Shards ``0 .. n-1``: valid ones are read, missing or corrupt ones generated (``make(i)``
        must be a picklable, deterministic function of ``i`` when ``workers > 1``). Processes asking for the
        same split (a run's ``--workers`` helpers) take turns: one generates, the others then read."""
        self.folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(self.folder.with_name(self.folder.name + ".lock")))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            tqdm.write(f"{desc}: another process is generating into {self.folder}; waiting for it")
            lock.acquire()
        try:
            return self._load(n, make, workers, desc)
        finally:
            lock.release()

    def _load(self, n: int, make: Callable[[int], Arrays], workers: int, desc: str) -> list[Arrays]:
        self.read_manifest()
        out: dict[int, Arrays] = {}
        todo = []
        for i in range(n):
            if not self.path(i).exists():
                self.entries.pop(self.name(i), None)
                todo.append(i)
                continue
            try:
                out[i] = self.read(i)
            except ShardError as e:
                warnings.warn(f"{e}; regenerating it", CorruptShardWarning, stacklevel=2)
                self.path(i).unlink(missing_ok=True)
                self.entries.pop(self.name(i), None)
                todo.append(i)
        if todo:
            self._generate(todo, make, workers, desc)
            for i in todo:
                out[i] = self.read(i)
        self.write_manifest()
        return [out[i] for i in range(n)]

    def _generate(self, todo: list[int], make: Callable[[int], Arrays], workers: int, desc: str) -> None:
        tqdm.write(f"{desc}: generating {len(todo)} shard(s) into {self.folder}")
        bar = tqdm(total=len(todo), desc=desc, unit="shard", dynamic_ncols=True, disable=None)  # None: tty only
        jobs = [(make, self.folder, self.name(i), i) for i in todo]
        try:
            if workers <= 1:
                results = (_make_and_write(*job) for job in jobs)
                self._record(results, bar, desc, len(todo))
            else:
                with mp.get_context("spawn").Pool(min(workers, len(todo))) as pool:
                    self._record(pool.imap_unordered(_star_make_and_write, jobs), bar, desc, len(todo))
        finally:
            bar.close()

    def _record(self, results: Any, bar: Any, desc: str, total: int) -> None:
        """Record each shard as it arrives, with the rate and ETA in frames: on a terminal in the bar,
        elsewhere (a log, a notebook) as one line per shard, so a long generation never looks hung."""
        frames, start = 0, time.perf_counter()
        for done, (i, entry) in enumerate(results, 1):
            self.entries[self.name(i)] = entry
            self.write_manifest()  # after every shard: an interrupted run keeps what it made
            frames += entry["frames"]
            rate = frames / max(time.perf_counter() - start, 1e-9)
            eta = (total - done) * frames / done / rate
            bar.update(1)
            bar.set_postfix_str(f"{frames} frames, {rate:.1f} frames/s", refresh=False)
            if bar.disable:
                tqdm.write(f"{desc}: shard {done}/{total}, {frames} frames, {rate:.1f} frames/s, ETA {eta:.0f} s")


def _star_make_and_write(job: tuple[Any, ...]) -> tuple[int, dict[str, Any]]:
    return _make_and_write(*job)


def shard_seed(*key: int) -> int:
    """A 31-bit seed for one shard, from (data seed, split code, shard index, ...)."""
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0] >> 1)


# --------------------------------------------------------------------------------------------
#                                   Frames and clips
# --------------------------------------------------------------------------------------------


def area_resize(frames: np.ndarray, size: int) -> Tensor:
    """uint8 ``(..., H, W, 3)`` -> uint8 ``(..., 3, size, size)``; area averaging (64 -> 32 averages
    2x2 blocks), the cheap anti-aliased downsample for CPU-sized frames."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2)
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x.float(), size=(size, size), mode="area").round().clamp(0, 255).to(torch.uint8)
    return x.reshape(*lead, 3, size, size).contiguous()


def stack_frames(shards: list[Arrays], size: int, key: str = "frames") -> Tensor:
    """uint8 ``(E, T, 3, size, size)`` from equally long episodes ``(T, H, W, 3)``. Each shard's
    native frames are dropped once copied, so the peak memory stays near the result's size (the
    ``paper`` profile of ``memory_maze`` holds ~25 GB of frames)."""
    first = area_resize(shards[0][key][:1], size)
    out = torch.empty((len(shards), len(shards[0][key]), *first.shape[1:]), dtype=torch.uint8)
    for i, s in enumerate(shards):
        out[i] = area_resize(s.pop(key), size)
    return out


def to_unit(frames: Tensor) -> Tensor:
    """uint8 -> float in [-1, 1]."""
    return frames.float() / 127.5 - 1.0


def bounce(length: int, turn: int) -> np.ndarray:
    """Indices ``0, 1, ..., turn, turn-1, ..., 0, 1, ...`` (``length`` of them): play ``turn + 1``
    frames forward, then back, then forward again. ``bounce(C + H, C - 1)`` is the retrieval task:
    after a context of ``C`` frames, frame ``C + i`` shows context frame ``C - 2 - i``."""
    if turn < 1:
        raise ValueError(f"bounce needs at least 2 frames to turn around, got turn={turn}")
    p = np.arange(length) % (2 * turn)
    return np.where(p <= turn, p, 2 * turn - p)


def motion_codes(motion: Tensor, idx: Tensor) -> Tensor:
    """Per-frame motion for a clip that plays ``motion``'s episode at indices ``idx``.

    ``motion (..., T, m)`` is the one-hot of the action that led *into* each recorded frame;
    ``idx (..., L)`` steps by +1 or -1. Played forward (``idx[j] = idx[j-1] + 1``) a frame keeps its
    own action. Played backward (``idx[j] = idx[j-1] - 1``) it is reached by undoing the action
    that led from it to the frame just shown, ``motion[idx[j-1]]``, and carries that one-hot
    negated: "left, undone", "forward, undone" (the 6 Memory Maze actions have no backward move,
    and a negated code keeps "undo forward" distinct from every real action). The first frame of
    a clip has no move into it: zeros."""
    gather = lambda i: torch.gather(motion, -2, i[..., None].expand(*i.shape, motion.shape[-1]))  # noqa: E731
    step = idx[..., 1:] - idx[..., :-1]
    if bool((step.abs() != 1).any()):
        raise ValueError("clip indices must step by +1 or -1")
    fwd = gather(idx[..., 1:])
    back = -gather(idx[..., :-1])
    out = torch.where((step > 0)[..., None], fwd, back)
    return torch.cat([torch.zeros_like(out[..., :1, :]), out], dim=-2)


def onehot(index: np.ndarray, n: int) -> np.ndarray:
    """float32 one-hot; negative indices (no action) give zeros."""
    index = np.asarray(index)
    out = np.zeros((*index.shape, n), np.float32)
    valid = index >= 0
    out[valid, index[valid]] = 1.0
    return out


@dataclass
class Episodes:
    """Recorded episodes in memory: ``frames`` uint8 ``(E, T, 3, H, W)``; per frame ``motion (E, T, m)``
    (one-hot of the action that led into it, zeros for none), ``places`` long ``(E, T)`` (revisit
    tags), optional ``codes`` long ``(E, T)`` (index of the one-hot place code) and optional ``poses``
    float ``(E, T, p)`` (features of the exact pose, appended to the action vector as they are)."""

    frames: Tensor
    motion: Tensor
    places: Tensor
    codes: Tensor | None = None
    poses: Tensor | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])


class EpisodeDataset(Dataset):
    """Training clips and evaluation sets cut from :class:`Episodes`; a subclass builds ``self.train``
    in ``__init__`` and calls :meth:`use`.

    Action vector per frame: the signed motion one-hot (:func:`motion_codes`) followed by the
    one-hot place code when the dataset has one (``code_dim > 0``) and the pose features when it has
    them (``pose_dim > 0``)."""

    channels = 3
    retrace_prob: float = 0.0
    code_dim: int = 0
    pose_dim: int = 0
    train: Episodes

    def use(self, train: Episodes) -> None:
        self.train = train
        self.frame_size = int(train.frames.shape[-1])
        self.action_dim = int(train.motion.shape[-1]) + self.code_dim + self.pose_dim

    def actions(self, eps: Episodes, ep: Tensor, idx: Tensor) -> Tensor:
        """Action vectors ``(b, L, a)`` of episodes ``ep (b,)`` played at indices ``idx (b, L)``."""
        parts = [motion_codes(eps.motion[ep].float(), idx)]
        if self.code_dim:
            assert eps.codes is not None
            parts.append(F.one_hot(torch.gather(eps.codes[ep], 1, idx), self.code_dim).float())
        if self.pose_dim:
            assert eps.poses is not None and eps.poses.shape[-1] == self.pose_dim
            poses = eps.poses[ep]
            parts.append(torch.gather(poses, 1, idx[..., None].expand(*idx.shape, poses.shape[-1])))
        return torch.cat(parts, dim=-1)

    def clip_indices(self, batch: int, clip_len: int, g: torch.Generator) -> Tensor:
        """``(b, L)`` indices into an episode: contiguous windows, or, with probability
        ``retrace_prob``, a window that turns around after ``k`` frames and plays them back (the
        retrieval task in miniature), starting either forward or backward in time."""
        T = self.train.frames.shape[1]
        check_episodes(Demand(clip_len, 2, 0, 0), episode_len=T)
        idx = torch.arange(clip_len).repeat(batch, 1)
        lo, hi = max(1, clip_len // 3), max(1, clip_len - 2)
        turn = torch.randint(lo, hi + 1, (batch,), generator=g)
        retrace = torch.rand(batch, generator=g) < (self.retrace_prob if clip_len > 2 else 0.0)
        for i in torch.nonzero(retrace).flatten().tolist():
            idx[i] = torch.from_numpy(bounce(clip_len, int(turn[i])))
        span = idx.amax(dim=1)
        flip = retrace & (torch.rand(batch, generator=g) < 0.5)
        idx = torch.where(flip[:, None], span[:, None] - idx, idx)
        start = (torch.rand(batch, generator=g) * (T - span)).long()  # span <= T - 1
        return start[:, None] + idx

    def sample(self, batch: int, clip_len: int, g: torch.Generator) -> tuple[Tensor, Tensor]:
        ep = torch.randint(0, len(self.train), (batch,), generator=g)
        idx = self.clip_indices(batch, clip_len, g)
        return to_unit(self.train.frames[ep[:, None], idx]), self.actions(self.train, ep, idx)

    def play(self, eps: Episodes, idx: np.ndarray) -> EvalSet:
        """Every episode of ``eps`` played at the indices ``idx (L,)`` (e.g. :func:`bounce`)."""
        ep = torch.arange(len(eps))
        i = torch.from_numpy(np.asarray(idx)).long().repeat(len(eps), 1)
        return EvalSet(
            frames=to_unit(eps.frames[ep[:, None], i]),
            actions=self.actions(eps, ep, i),
            places=torch.gather(eps.places.long(), 1, i),
        )
