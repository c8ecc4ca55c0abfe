"""The sections of a suite that describe one cell's model, diffusion, training and rollout (validated
pydantic models; :mod:`rad_bench.config` assembles them into a :class:`~rad_bench.config.Suite`).
Torch-free to import."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from rad_bench.model.presets import PRESETS
from rad_bench.registry import unknown_name_message
from rad_bench.schema import Strict


class ModelCfg(Strict):
    preset: str = "small"
    window: int = Field(4, ge=1, description="frames seen by temporal attention, current included")
    patch: int = Field(4, ge=1)
    dim: int | None = Field(None, ge=8, description="overrides the preset")
    depth: int | None = Field(None, ge=1)
    heads: int | None = Field(None, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    match_params: bool = Field(True, description="widen MLPs so every block's model has the same size")
    memory_action: bool = Field(True, description="feed the action embedding to the memory blocks (RAD)")
    anchor: bool = Field(False, description="x0 = the last clean frame + the model's correction (prediction x0)")
    state_budget: int | None = Field(
        None,
        ge=1,
        description="bytes of memory-block state carried per layer and spatial token: each constant-state "
        "block's state knob is set to the most state within it (full attention runs unbudgeted); sweepable",
    )

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        if v not in PRESETS:
            raise ValueError(unknown_name_message("preset", v, list(PRESETS)))
        return v


class DiffusionCfg(Strict):
    levels: int = Field(1000, ge=2)
    prediction: str = Field("v", pattern="^(eps|v|x0)$")
    shift: float = Field(
        1.0,
        gt=0,
        le=64,
        description="noise schedule shift: SNR / shift^2 at every level, training and sampling "
        "alike (Hoogeboom et al. 2023); 1 = the cosine schedule",
    )
    sampler_levels: Literal["even", "snr"] = Field(
        "even",
        description="sampler steps: level indices evenly spaced, or at the noise levels of the unshifted "
        "schedule's evenly spaced steps (the last steps at low noise under a shift); the same at shift 1",
    )


class TrainCfg(Strict):
    steps: int = Field(1500, ge=0)
    batch_size: int = Field(16, ge=1)
    clip_len: int = Field(16, ge=1)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: int = Field(50, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    clean_prob: float = Field(0.25, ge=0, lt=1, description="per-frame probability of a clean (context) frame")
    mode: Literal["frame", "chunk", "df"] = Field(
        "frame",
        description="frame: RAD frame-wise AR with state prefetch; chunk: non-overlapping chunks with the "
        "state carried; df: Diffusion Forcing over the whole clip (memory sees noisy frames)",
    )
    prefetch_grad: bool = Field(True, description="frame mode: backpropagate through the clean prefetch pass")
    loss_frames: Literal["all", "targets"] = Field(
        "all",
        description="which noisy frames carry the loss: all, or the target frames the dataset declares "
        "(recall: the first ask of each slot)",
    )
    clean_prefix: float = Field(
        0.0, ge=0, le=1, description="probability of a clean prefix of > clip_len/2 frames (Po et al. 2025)"
    )
    log_every: int = Field(50, ge=1)
    eval_every: int = Field(
        0,
        ge=0,
        description="score the validation episodes every this many steps into the cell's curve.csv "
        "(the learning curve; 0 = off)",
    )
    checkpoint_every: int = Field(
        200, ge=0, description="save a resumable training checkpoint every this many steps (0 = off)"
    )
    ema: float = Field(0.0, ge=0, lt=1, description="EMA decay, warm-up min(ema, (1+n)/(10+n)); rollout uses EMA")
    # The fast path (rad_bench.train.FastPath); auto = on for CUDA, CPU keeps the eager float32 path.
    compile: Literal["auto", "on", "off"] = Field("auto", description="torch.compile the model for the step")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="bf16 autocast forward, float32 weights")
    prefetch_batches: Literal["auto", "on", "off"] = Field("auto", description="draw the next batch in a thread")

    @field_validator("compile", "prefetch_batches", mode="before")
    @classmethod
    def _switch(cls, v: Any) -> Any:  # YAML reads a bare on/off as a boolean: take it as the word
        return ("on" if v else "off") if isinstance(v, bool) else v


class RolloutCfg(Strict):
    context: int = Field(16, ge=1, description="ground-truth frames given before generation")
    horizon: int = Field(32, ge=1, description="frames generated with ground-truth actions")
    clips: int = Field(16, ge=1, description="evaluation episodes (the same for every block and seed)")
    split: Literal["test", "validation"] = Field(
        "test", description="which fixed episodes are scored: test (reported), or validation (choosing settings)"
    )
    batch_size: int = Field(16, ge=1)
    sampling_steps: int = Field(10, ge=1)


class LauncherCfg(Strict):
    """Resources of each job of ``rad-bench run --launcher slurm|local`` (rad_bench.launch: one per cell)."""

    partition: str | None = Field(None, description="Slurm partition; default: the cluster's")
    gpus: int = Field(1, ge=0, description="GPUs per job")
    cpus: int = Field(8, ge=1, description="CPU cores per job")
    time: int = Field(120, ge=1, description="time limit per job, in minutes")
    mem_gb: int | None = Field(None, ge=1, description="memory per job in GiB; default: the cluster's")
    workers: int | Literal["auto"] = Field(
        "auto",
        description="processes on this machine sharing the run folder (the default of --workers); auto: on CPU "
        "one one-thread process per core when the suite trains two or more models of 100 steps or more "
        "(on 2 cores as fast or faster than one process with both: docs/throughput.md), else one",
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, v: Any) -> Any:
        if v == "auto" or (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 64):
            return v
        raise ValueError("must be auto or a whole number of processes from 1 to 64")
