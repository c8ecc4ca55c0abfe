"""``summary.md`` and the rollout figure: per section a markdown table of ratios with their targets, built
from the rows the sections return, all from one run on one device. A ratio is the ratio of two medians over
the repetitions, shown with the range the two spreads allow (fastest over slowest, slowest over fastest); a
row is PASS or MISS only when that whole range is on one side of its target, otherwise "within noise"."""

from __future__ import annotations

import io
import time
from typing import Any

from rad_bench.bench.common import BF16, FP32, Bench, is_cuda
from rad_bench.bench.scans import SCAN_PAIRS
from rad_bench.bench.steps import STEP_TARGET
from rad_bench.bench.suites import BASELINE, SUITE_DRIFT, SUITE_TARGET
from rad_bench.report.document import Table

ROLLOUT_TARGET = 1.15  # max per-frame time ratio 16x / 1x window for constant-state blocks
FRAME_VS_CHUNK_TARGET = 1.5  # max training-step time ratio, frame-wise (prefetch) / chunk-wise
NAIVE_VS_FRAME_TARGET = 3.0  # min training-step time ratio, naive window loop / frame-wise (prefetch)


def plot_rollout(rows: list[dict[str, Any]], name: str) -> bytes:
    """PNG of ms per frame vs rollout length, one line per block (dashed: bf16 autocast)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    for (block, dtype), rs in group(rows, "block", "dtype").items():
        label = block if dtype == FP32 else f"{block} ({dtype})"
        ls = "-" if dtype == FP32 else "--"
        ax.plot([r["frames"] for r in rs], [r["ms_per_frame"] for r in rs], ls, marker="o", label=label)
    frames = sorted({r["frames"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(frames, [str(f) for f in frames])
    ax.set_xlabel(f"rollout length (frames after a {rows[0]['context']}-frame context; window {rows[0]['window']})")
    ax.set_ylabel("ms per frame")
    ax.set_title(f"rollout cost vs length, batch {rows[0]['batch']}, {name}", fontsize=9)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def group(rows: list[dict[str, Any]], *keys: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        k = tuple(row[key] for key in keys)
        out.setdefault(k if len(keys) > 1 else k[0], []).append(row)
    return out


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table (:class:`rad_bench.report.document.Table`), as one ``summary.md`` line."""
    return Table(header, rows).markdown()


def g3(v: float) -> str:
    return f"{v:.3g}"


Ratio = tuple[float, float, float]  # (low, median, high)


def row_ratio(num: dict[str, Any], den: dict[str, Any], key: str) -> Ratio:
    """``num[key] / den[key]`` (medians) with the range the rows' ``<key>_lo`` / ``<key>_hi`` spreads allow."""
    lo = lambda r: r.get(f"{key}_lo", r[key])  # noqa: E731
    hi = lambda r: r.get(f"{key}_hi", r[key])  # noqa: E731
    return lo(num) / hi(den), num[key] / den[key], hi(num) / lo(den)


def show(r: Ratio) -> str:
    return f"{r[1]:.2f}x [{r[0]:.2f}, {r[2]:.2f}]"


def verdict(r: Ratio, target: float | None, at_most: bool = False) -> tuple[str, str]:
    """(target text, PASS / MISS / within noise) for a ratio and its range; no target gives ("—", "—")."""
    if target is None:
        return "—", "—"
    lo, _, hi = r
    meets = hi <= target if at_most else lo >= target
    fails = lo > target if at_most else hi < target
    status = "PASS" if meets else "MISS" if fails else "within noise"
    return (f"<= {target}" if at_most else f">= {target}x"), status


def rollout_summary(rows: list[dict[str, Any]]) -> list[str]:
    fp32 = [r for r in rows if r["dtype"] == FP32]
    lengths = sorted({r["length_x_window"] for r in fp32})
    table = []
    for block, rs in group(fp32, "block").items():
        by = {r["length_x_window"]: r for r in rs}
        lo, hi = by[lengths[0]], by[lengths[-1]]
        r = row_ratio(hi, lo, "ms_per_frame")
        constant = lo["state_growth"] == "constant"
        target, status = verdict(r, ROLLOUT_TARGET, at_most=True) if constant else ("grows (expected)", "—")
        times = [g3(by[m]["ms_per_frame"]) for m in lengths]
        state = f"{lo['state_bytes'] / 1e6:.3g} → {hi['state_bytes'] / 1e6:.3g}"
        table.append([block, lo["state_growth"], lo["impl"], *times, state, show(r), target, status])
    head = ["block", "state", "impl", *(f"ms/frame {m}x" for m in lengths), "state MB", f"{lengths[-1]}x/{lengths[0]}x"]
    r0 = fp32[0]
    intro = [
        "## 1. Rollout cost vs length",
        "",
        f"Untrained smoke_all models; batch {r0['batch']}, context {r0['context']}, window {r0['window']}, "
        f"{r0['sampling_steps']} sampling steps + 1 commit per frame; ms per rollout step (one frame per clip), "
        f"context pass subtracted, median of {r0.get('reps', '?')} repetitions (ratio: [range of the spreads]). "
        f"State MB: KV window + memory state, {lengths[0]}x → {lengths[-1]}x window. Peak memory "
        f"({r0['peak_mem_kind']}) is in `rollout-*.csv`.",
        "",
    ]
    return intro + [markdown([*head, "target", "status"], table)] + bf16_summary(rows)


def bf16_summary(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["block"], r["dtype"], r["length_x_window"]): r for r in rows}
    longest = max(r["length_x_window"] for r in rows)
    table = []
    for block in group(rows, "block"):
        if (block, BF16, longest) in by:
            a, h = by[(block, FP32, longest)]["ms_per_frame"], by[(block, BF16, longest)]["ms_per_frame"]
            table.append([block, g3(a), g3(h), f"{a / h:.2f}x"])
    if not table:
        return []
    head = ["block", f"fp32 ms/frame {longest}x", f"bf16 ms/frame {longest}x", "bf16 speedup"]
    return ["### bf16 autocast rollout", "", markdown(head, table)]


def scans_summary(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["op"], r["impl"], r["mode"]): r for r in rows}
    table = []
    for op, fast, base, target in SCAN_PAIRS:
        for mode in ("fwd", "fwd+bwd"):
            if (op, fast, mode) not in by or (op, base, mode) not in by:
                continue
            f, s = by[(op, fast, mode)], by[(op, base, mode)]
            speedup = row_ratio(s, f, "ms")
            t, status = verdict(speedup, target)
            table.append([op, f"{fast} vs {base}", mode, str(f["length"]), g3(s["ms"]), g3(f["ms"]), show(speedup)])
            table[-1] += [t, status]
    head = ["op", "fast vs baseline", "mode", "length", "baseline ms", "fast ms", "speedup", "target", "status"]
    configs = "; ".join(f"{op}: {rs[0]['config']}, {rs[0]['rows']} rows" for op, rs in group(rows, "op").items())
    intro = [
        "## 2. Scans",
        "",
        f"Speedup = baseline time / fast time, medians of {rows[0].get('reps', '?')} repetitions "
        f"[range of the spreads]. {configs}.",
        "",
    ]
    return intro + [markdown(head, table)]


def train_summary(rows: list[dict[str, Any]]) -> list[str]:
    r0 = rows[0]
    table = [
        [
            r["block"],
            f"{r['steps_per_s']:.2f}",
            f"{r['frames_per_s']:.0f}",
            f"{r['flops_per_step'] / 1e9:.3g}",
            f"{r['achieved_flops_per_s'] / 1e9:.3g}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        ]
        for r in rows
    ]
    head = ["block", "steps/s", "frames/s", "GFLOP/step", "achieved GFLOP/s", "of matmul peak"]
    intro = [
        "## 3. Training",
        "",
        f"`train()` at batch {r0['batch']} x {r0['clip_len']} frames, {r0['steps_timed']} steps after warm-up. "
        f"FLOPs: forward + backward per step (FlopCounterMode: matmul, conv, attention). "
        f"Matmul peak: float32 {r0['matmul_n']}x{r0['matmul_n']} at {r0['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s.",
        "",
    ]
    return intro + [markdown(head, table)]


def modes_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = []
    for block, rs in group(rows, "block").items():
        w = {r["way"]: r for r in rs}
        fc, dc = (
            row_ratio(w["frame"], w["chunk"], "s_per_step"),
            row_ratio(w["frame (prefetch detached)"], w["chunk"], "s_per_step"),
        )
        nf = row_ratio(w["naive window loop"], w["frame"], "s_per_step")
        table.append(
            [
                block,
                *(f"{1e3 * r['s_per_step']:.0f}" for r in w.values()),
                show(fc),
                verdict(fc, FRAME_VS_CHUNK_TARGET, at_most=True)[1],
                show(dc),
                show(nf),
                verdict(nf, NAIVE_VS_FRAME_TARGET)[1],
            ]
        )
    r0 = rows[0] if rows else {"batch": "?", "clip_len": "?"}
    head = [
        "block",
        "chunk ms",
        "frame ms",
        "frame detached ms",
        "naive ms",
        "frame / chunk",
        f"target <= {FRAME_VS_CHUNK_TARGET}x",
        "detached / chunk",
        "naive / frame",
        f"target >= {NAIVE_VS_FRAME_TARGET}x",
    ]
    intro = [
        "## 4. Training modes",
        "",
        f"Forward + backward of one batch of {r0['batch']} clips x {r0['clip_len']} frames (no optimizer step), "
        f"median of {r0.get('reps', '?')} repetitions [range of the spreads]. `frame`: RAD's frame-wise training "
        "with the state prefetch (one clean pass, then every frame denoised in one batch); `naive window loop`: "
        "the same loss frame after frame with the state handed on (`rad_bench.modes.frame_loss_naive`).",
        "",
    ]
    return intro + [markdown(head, table)]


def metrics_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = [
        [r["metric"], str(r["frames"]), f"{r['frame_size']} → {r['model_input_size']}", g3(r["frames_per_s"])]
        for r in rows
    ]
    return ["## 5. Metrics throughput", "", markdown(["metric", "frames", "px (in → model)", "frames/s"], table)]


def steps_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = []
    for (size, block), (r,) in group(rows, "size", "block").items():
        (none,) = [n for n in rows if n["size"] == size and n["block"] == "none"]
        ratio = row_ratio(r, none, "s_per_step")
        _, status = verdict(ratio, STEP_TARGET, at_most=True)
        table.append([size, block, f"{r['s_per_step'] * 1e3:.1f}", show(ratio), status])
    counts = ", ".join(f"{size} {rs[0]['reps']} x {rs[0]['steps']}" for size, rs in group(rows, "size").items())
    intro = [
        "## 6. Training step vs `none`, one thread",
        "",
        f"`train()` at each suite's own batch and clip (recall: `suites/recall.yaml`; smoke: `suites/smoke_all.yaml`), "
        f"one torch thread (each process of a CPU suite's `launcher.workers: auto`), the median of repeated runs of "
        f"N steps after warm-up ({counts}; ratio: [range of the spreads]); target: no block slower than "
        f"{STEP_TARGET:g}x `none`.",
        "",
    ]
    return intro + [markdown(["size", "block", "ms/step", "x none", "status"], table)]


def suites_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = []
    for suite, rs in group(rows, "suite").items():
        base, new = rs[0], rs[-1]
        ratio = new["steps_per_s"] / base["steps_per_s"]
        _, status = verdict((ratio / (1 + SUITE_DRIFT), ratio, ratio * (1 + SUITE_DRIFT)), SUITE_TARGET)
        size = f"{new['trainings']} x {new['steps'] // max(1, new['trainings'])}"
        cells = [f"{r['steps_per_s']:.2f} ({r['wall_s']:.0f} s)" for r in (base, new)]
        table.append([f"`{suite}` (`{new['subset']}`)", size, *cells, f"{ratio:.2f}x", status])
    intro = [
        "## 7. Suite throughput against commit " + BASELINE,
        "",
        f"Training steps per wall second of a whole `rad-bench run` (training, evaluation, report) of the suite as it "
        f"was at {BASELINE}, by that commit's code and by this one, one run each, one after the other: a subset of "
        f"each suite (one seed; below), the same for both codes. One run each has no spread of its own; whole runs on "
        f"this VM drift by about {SUITE_DRIFT:.0%} from run to run, so a ratio within that of the target is within "
        f"noise. Target: {SUITE_TARGET:g}x.",
        "",
    ]
    head = ["suite (subset)", "trainings x steps", f"{BASELINE} steps/s (wall)", "this code steps/s (wall)", "ratio"]
    return intro + [markdown([*head, "status"], table)]


def gpu_summary(rows: list[dict[str, Any]]) -> list[str]:
    """Section 8 (CUDA only): steps/s and bf16 MFU per block and preset, SSD kernel vs reference."""
    if not rows:
        return []
    by = {(r["block"], r["preset"], r["kind"]): r["value"] for r in rows if r["kind"] in ("train", "mfu")}
    table = [[blk, pre, g3(v), f"{by[(blk, pre, 'mfu')]:.1%}"] for (blk, pre, k), v in by.items() if k == "train"]
    ssd = [[r["dtype"], r["what"], f"{r['value']:.2e}"] for r in rows if r["kind"] == "ssd"]
    peak = [r["value"] for r in rows if r["kind"] == "peak"]
    lines = ["## 8. GPU", "", f"bf16 matmul peak measured in this run: {peak[0] / 1e12:.1f} TFLOP/s." if peak else ""]
    lines += ["", markdown(["block", "preset", "train steps/s", "MFU (bf16)"], table), ""]
    if ssd:
        lines += ["SSD kernel vs chunked reference:", "", markdown(["dtype", "tensor", "rel. error"], ssd), ""]
    return lines


def summary_md(b: Bench, env: dict[str, Any], results: dict[str, list[dict[str, Any]]], wall_s: float) -> str:
    notes = list(b.notes)
    if not is_cuda(b.device):
        notes.append("CPU peak memory is the growth of the process-wide peak RSS during a rollout, not its own use.")
    lines = [
        f"# rad-bench efficiency: {b.tag} ({b.name})",
        "",
        f"{'--quick' if env['quick'] else 'full'} run, torch {env['torch']}, {env['torch_threads']} threads, "
        f"git {env['git_sha'][:7]}, {time.strftime('%Y-%m-%d %H:%M')}, {wall_s:.0f} s. "
        f"All ratios are from this one run on this one device.",
        "",
    ]
    parts = {
        "rollout": rollout_summary,
        "scans": scans_summary,
        "train": train_summary,
        "modes": modes_summary,
        "metrics": metrics_summary,
        "steps": steps_summary,
        "suites": suites_summary,
        "gpu": gpu_summary,
    }
    for name, part in parts.items():
        lines += part(results[name]) if results.get(name) else []
    skipped = [name for name in parts if name not in results]
    notes += [f"Sections not run (--section): {', '.join(skipped)}."] if skipped else []
    lines += ["## Notes", "", *(f"- {n}" for n in notes)] if notes else []
    return "\n".join(lines) + "\n"
