"""The ``recall`` dataset (visual associative recall) and the ``recall_acc`` metric.

pytest tests/test_recall.py
"""

from __future__ import annotations

import pytest
import torch

from rad_bench.data import DataError, Demand
from rad_bench.data.recall import MAX_VALUES, PHASES, Recall, RecallConfig, render, render_values
from rad_bench.metrics import get_metric
from rad_bench.metrics.recall import classify, recall_acc
from rad_bench.registry import DATASETS
from rad_bench.tags import tag_frames

K, D, Q, S = 4, 8, 8, 16  # slots, delay, queries, max_slots


def make(**kw) -> Recall:
    return Recall(RecallConfig(**{"slots": K, "delay": D, "queries": Q, **kw}))


def split(actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(slot id or -1, phase index) per frame."""
    key, phase = actions[..., :S], actions[..., S:]
    return torch.where(key.sum(-1) > 0, key.argmax(-1), -1), phase.argmax(-1)


def test_registered_and_sized():
    data = DATASETS.get("recall")(RecallConfig())
    assert (data.channels, data.frame_size, data.action_dim) == (3, 16, S + len(PHASES))


def test_values_are_distinct_and_equally_far_from_grey():
    protos = render_values(16)
    assert protos.shape == (MAX_VALUES, 3, 16, 16)
    flat = protos.flatten(1)
    d = torch.cdist(flat, flat) + torch.eye(MAX_VALUES) * 1e9
    assert d.min() > 0.25 * flat.norm(dim=1).min()  # every pair differs in a large part of the view
    assert torch.allclose(flat.norm(dim=1), flat.norm(dim=1)[0])  # a grey guess favours no value
    assert (classify(protos) == torch.arange(MAX_VALUES)).all()


def test_episode_layout():
    data = make()
    frames, actions, places = data.episodes(6, torch.Generator().manual_seed(0))
    assert frames.shape == (6, K + D + Q, 3, 16, 16) and actions.shape == (6, K + D + Q, S + 3)
    assert frames.min() >= -1 and frames.max() <= 1
    slot, phase = split(actions)
    assert (phase[:, :K] == 0).all() and (phase[:, K : K + D] == 1).all() and (phase[:, K + D :] == 2).all()
    assert (slot[:, K : K + D] == -1).all() and (actions[:, K : K + D, :S] == 0).all()
    assert (frames[:, K : K + D] == 0).all()  # blank delay: nothing about any slot
    for e in range(6):
        writes = slot[e, :K]
        assert len(set(writes.tolist())) == K  # K distinct keys
        assert (places[e, :K] == writes).all() and (places[e, K + D :] == slot[e, K + D :]).all()
        # the write frames show the drawn values, one per slot
        values = classify(frames[e, :K])
        assert (render(values, 16) == frames[e, :K]).all()
        for t in range(K + D, K + D + Q):
            (i,) = (writes == slot[e, t]).nonzero()[0]  # every query returns to a written slot
            assert torch.equal(frames[e, t], frames[e, i])  # target = that slot's write frame exactly
    delay_places = places[:, K : K + D]
    assert (delay_places >= S).all() and len(set(delay_places[0].tolist())) == D


def test_values_fresh_per_episode_and_deterministic_per_generator():
    data = make()
    a = data.sample(64, K + D + Q, torch.Generator().manual_seed(3))
    b = data.sample(64, K + D + Q, torch.Generator().manual_seed(3))
    c = data.sample(64, K + D + Q, torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    evals = make(mix_slots=False).episodes(64, torch.Generator().manual_seed(3))[0]
    values = classify(evals[:, :K].flatten(0, 1)).reshape(64, K)
    assert len(set(values[:, 0].tolist())) > 16  # a slot's value changes from episode to episode


def test_training_mix_writes_1_to_k_slots_with_the_same_gap():
    data = make(slots=8)
    frames, actions = data.sample(200, 8 + D + Q, torch.Generator().manual_seed(0))
    slot, phase = split(actions)
    written = (phase[:, :8] == 0).sum(1)
    assert written.min() == 1 and written.max() == 8
    for e in range(200):  # idle frames first, then the writes right before the delay
        k = int(written[e])
        assert (phase[e, : 8 - k] == 1).all() and (phase[e, 8 - k : 8] == 0).all()
        assert (frames[e, : 8 - k] == 0).all()
        assert set(slot[e, 8 + D :].tolist()) <= set(slot[e, 8 - k : 8].tolist())
    assert (phase[:, 8 : 8 + D] == 1).all() and (phase[:, 8 + D :] == 2).all()


def test_value_distractors_reveal_no_slot():
    data = make(delay_fill="values")
    frames, actions, _ = data.episodes(4, torch.Generator().manual_seed(0))
    slot, _ = split(actions)
    assert (slot[:, K : K + D] == -1).all()
    delay = frames[:, K : K + D]
    assert (render(classify(delay.flatten(0, 1)), 16).reshape(delay.shape) == delay).all()  # renderings


def test_eval_set_is_fixed():
    a = make().eval_set(8, K + D, Q)
    b = make().eval_set(8, K + D, Q)
    c = Recall(RecallConfig(slots=K, delay=D, queries=Q), seed=5).eval_set(12, K + D, Q)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.actions, b.actions) and torch.equal(a.places, b.places)
    assert torch.equal(a.frames, c.frames[:8])  # independent of the training seed and of the count
    assert (split(a.actions)[1][:, :K] == 0).all()  # evaluation always writes K slots


def test_validation_episodes_are_held_out_from_the_test_episodes():
    test, val = make().eval_set(8, K + D, Q), make().eval_set(8, K + D, Q, split="validation")
    assert torch.equal(val.frames, make().eval_set(8, K + D, Q, split="validation").frames)  # fixed too
    same = (test.frames == val.frames).flatten(1).all(1)
    assert not same.any()  # no validation episode repeats a test episode


@pytest.mark.parametrize("slots", [1, 4, 16])
def test_every_query_is_a_revisit(slots):
    """depth 2, window 3: reach 5 frames; a delay of 4 is the least that puts every write beyond it."""
    for delay in (4, 8):
        data = make(slots=slots, delay=delay)
        ev = data.eval_set(8, slots + delay, Q)
        for places in ev.places.tolist():
            assert tag_frames(places, slots + delay, 5) == ["revisit"] * Q


def test_short_delay_is_in_window():
    ev = make(delay=2).eval_set(4, K + 2, Q)
    assert "in_window" in {tag for p in ev.places.tolist() for tag in tag_frames(p, K + 2, 5)}


def test_recall_acc_known_values():
    spec = get_metric("recall_acc")
    assert spec.higher_is_better and spec.scope == "per_frame" and "1/V" in spec.protocol()
    protos = render_values(16)
    assert (spec.load()(protos, protos) == 1).all()  # the target itself
    assert (recall_acc(protos, protos.roll(1, dims=0)) == 0).all()  # a different value
    g = torch.Generator().manual_seed(0)
    target = protos[torch.randint(0, MAX_VALUES, (4000,), generator=g)]
    other = protos[torch.randint(0, MAX_VALUES, (4000,), generator=g)]
    assert abs(recall_acc(other, target).mean().item() - 1 / MAX_VALUES) < 0.01  # random values: chance
    noisy = (target + 0.3 * torch.randn(target.shape, generator=g)).clamp(-1, 1)
    assert (recall_acc(noisy, target) == 1).all()  # robust to mild noise
    blurred = torch.nn.functional.avg_pool2d(target, 3, 1, 1, count_include_pad=False)
    assert (recall_acc(blurred, target) == 1).all()  # and to a slightly soft rendering
    assert recall_acc(torch.zeros(5, 3, 8, 8), render_values(8)[:5]).shape == (5,)  # any frame size


def test_recall_acc_refuses_non_rgb():
    with pytest.raises(ValueError, match="RGB"):
        recall_acc(torch.zeros(2, 1, 16, 16), torch.zeros(2, 1, 16, 16))


@pytest.mark.parametrize(
    ("need", "field", "fix"),
    [
        (Demand(clip_len=16, context=K + D, horizon=Q, clips=4), "train.clip_len", "set train.clip_len: 20"),
        (Demand(clip_len=20, context=K, horizon=Q, clips=4), "rollout.context", "set rollout.context: 12"),
        (Demand(clip_len=20, context=K + D, horizon=4, clips=4), "rollout.horizon", "set rollout.horizon: 8"),
    ],
)
def test_check_names_the_field_and_the_fix(need, field, fix):
    with pytest.raises(DataError) as e:
        RecallConfig(slots=K, delay=D, queries=Q).check(need)
    assert field in str(e.value) and fix in str(e.value)
    RecallConfig(slots=K, delay=D, queries=Q).check(Demand(K + D + Q, K + D, Q, 4))


def test_sample_refuses_partial_clips():
    with pytest.raises(DataError, match="train.clip_len"):
        make().sample(2, 10, torch.Generator())


@pytest.mark.parametrize(
    ("kw", "words"),
    [({"slots": 17}, "max_slots"), ({"frame_size": 18}, "multiple of 4"), ({"values": 33}, "values")],
)
def test_config_refuses_bad_sizes(kw, words):
    with pytest.raises(ValueError, match=words):
        RecallConfig(**kw)


@pytest.mark.parametrize("slots", [1, 2, 4])
def test_write_frames_fix_the_episode_whatever_k(slots):
    """W = 4 write frames: the K writes take the last K, the W - K before them are idle blanks, so the
    episode length, the context and the gap from the last write to the queries do not depend on K."""
    W = 4
    data = make(slots=slots, write_frames=W)
    ev = data.eval_set(6, W + D, Q)
    frames, places = ev.frames, ev.places
    assert frames.shape[1] == W + D + Q and data.cfg.episode_len == W + D + Q
    slot, phase = split(ev.actions)
    idle = W - slots
    assert (phase[:, :idle] == 1).all() and (slot[:, :idle] == -1).all() and (frames[:, :idle] == 0).all()
    assert (phase[:, idle:W] == 0).all() and (slot[:, idle:W] >= 0).all()  # the writes, right before the delay
    assert (phase[:, W : W + D] == 1).all() and (phase[:, W + D :] == 2).all()
    assert (places[:, :idle] >= S).all() and (places[:, W : W + D] >= S).all()  # idle and delay: never revisited
    for p in places.tolist():
        assert tag_frames(p, W + D, 5) == ["revisit"] * Q
    for e in range(6):
        for t in range(W + D, W + D + Q):  # every query returns to a slot written in the last K write frames
            (i,) = (slot[e, idle:W] == slot[e, t]).nonzero()[0]
            assert torch.equal(frames[e, t], frames[e, idle + i])


def test_write_frames_default_is_slots():
    assert RecallConfig(slots=3).writes == 3 and RecallConfig(slots=3, write_frames=16).writes == 16
    a = make().episodes(4, torch.Generator().manual_seed(1))
    b = make(write_frames=K).episodes(4, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(a, b))  # write_frames = slots: today's episodes exactly


def test_training_mix_writes_last_in_the_write_frames():
    W = 8
    data = make(slots=4, write_frames=W)
    frames, actions = data.sample(200, W + D + Q, torch.Generator().manual_seed(0))
    slot, phase = split(actions)
    written = (phase[:, :W] == 0).sum(1)
    assert written.min() == 1 and written.max() == 4
    for e in range(200):
        k = int(written[e])
        assert (phase[e, : W - k] == 1).all() and (phase[e, W - k : W] == 0).all() and (frames[e, : W - k] == 0).all()


def test_write_frames_below_slots_is_refused_and_named_in_the_checks():
    with pytest.raises(ValueError, match=r"write_frames \(2\) < slots \(4\)"):
        RecallConfig(slots=4, write_frames=2)
    cfg = RecallConfig(slots=2, write_frames=16, delay=D, queries=Q)
    with pytest.raises(DataError, match=r"data.write_frames \+ data.delay \+ data.queries.*set train.clip_len: 32"):
        cfg.check(Demand(clip_len=2 + D + Q, context=16 + D, horizon=Q, clips=4))
    with pytest.raises(DataError, match=r"data.write_frames \+ data.delay \(24\).*set rollout.context: 24"):
        cfg.check(Demand(clip_len=32, context=2 + D, horizon=Q, clips=4))
    cfg.check(Demand(32, 24, Q, 4))


def test_protocol_states_the_exact_chance():
    spec = get_metric("recall_acc")
    assert "chance=0.03125" in spec.protocol()  # V = 32 by default
    assert "chance=0.125" in spec.protocol(data=RecallConfig(name="recall", values=8))
    assert "chance=0.03125" in spec.protocol(data=RecallConfig(name="recall"))


def test_suite_sweeps_k_at_fixed_lengths():
    from pathlib import Path

    from rad_bench.config import load_suite, variants

    suite = load_suite(Path(__file__).resolve().parents[1] / "suites" / "recall.yaml")
    assert suite.data.name == "recall" and "recall_acc" in suite.metrics
    assert suite.sweep == {"data.slots": [2, 4, 8, 16]} and len(suite.seeds) == 3
    assert [b.name for b in suite.blocks] == ["none", "full_attn", "lstm_attn", "mamba2", "ttt", "frame_stack"]
    assert suite.leaderboard.sort_by == "recall_acc_revisit"
    points = variants(suite)
    assert [label for label, _ in points] == ["slots=2", "slots=4", "slots=8", "slots=16"]
    for _, v in points:  # the same clip, context and horizon at every K
        assert (v.train.clip_len, v.rollout.context, v.rollout.horizon) == (32, 24, 8)
        assert isinstance(v.data, RecallConfig) and v.data.episode_len == 32  # typed once, carried


def test_train_slots_fixes_training_whatever_k():
    """With train_slots the training batches do not depend on slots (an evaluation-only setting now),
    while the evaluation episodes still write all K."""
    a, b = make(slots=2, train_slots=8, write_frames=8), make(slots=8, train_slots=8, write_frames=8)
    for data in (a, b):
        assert data.cfg.eval_only() == {"slots"}
    xa, ya = a.sample(16, 8 + D + Q, torch.Generator().manual_seed(3))
    xb, yb = b.sample(16, 8 + D + Q, torch.Generator().manual_seed(3))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    written = (split(ya)[1][:, :8] == 0).sum(1)
    assert written.max() > 2  # the mix reaches past the evaluated K
    ev = a.eval_set(4, 8 + D, Q)
    assert ((split(ev.actions)[1][:, :8] == 0).sum(1) == 2).all()
    assert make(slots=2).cfg.eval_only() == set()
    with pytest.raises(ValueError, match="train_slots"):
        make(slots=2, train_slots=9, write_frames=8)


def test_cells_that_differ_only_in_evaluation_share_one_training(tmp_path):
    """A sweep of data.slots with a fixed train_slots trains once per block and seed; the shared cell's
    scores equal those of a separate run that trains itself (CPU training is deterministic)."""
    import json

    import pandas as pd

    from rad_bench.config import load_suite
    from rad_bench.runner import run_suite

    body = (
        "name: share\nblocks: [none]\nmetrics: [recall_acc]\nseeds: [0]\nleaderboard: {sort_by: recall_acc_all}\n"
        "model: {preset: tiny, window: 2, patch: 8, dim: 32, depth: 1, heads: 2}\n"
        "data: {name: recall, frame_size: 16, slots: 2, train_slots: 2, write_frames: 2, delay: 2, queries: 2}\n"
        "train: {steps: 3, batch_size: 2, clip_len: 6, log_every: 1, warmup: 1}\n"
        "rollout: {context: 4, horizon: 2, clips: 2, batch_size: 2, sampling_steps: 2}\n"
    )
    (tmp_path / "s.yaml").write_text(body + "sweep: {data.slots: [1, 2]}\n")
    (tmp_path / "one.yaml").write_text(body)
    swept = run_suite(load_suite(tmp_path / "s.yaml"), run_dir=tmp_path / "swept", progress=False, argv=["t"])
    alone = run_suite(load_suite(tmp_path / "one.yaml"), run_dir=tmp_path / "alone", progress=False, argv=["t"])
    stats = json.loads((swept / "cells" / "none[slots=2]-s0" / "stats.json").read_text())
    assert stats["train_shared_from"] == "none[slots=1]-s0"
    first = json.loads((swept / "cells" / "none[slots=1]-s0" / "stats.json").read_text())
    assert first["train_shared_from"] == "" and first["train_key"] == stats["train_key"]
    cols = ["clip", "frame", "metric", "value"]
    shared = pd.read_csv(swept / "cells" / "none[slots=2]-s0" / "metrics.csv")[cols]
    trained = pd.read_csv(alone / "cells" / "none-s0" / "metrics.csv")[cols]
    pd.testing.assert_frame_equal(shared, trained, check_exact=True)
    from rad_bench.reuse import load_cell

    done = load_cell(swept, "none[slots=2]-s0", split="test")  # a swept cell comes back at its sweep point
    assert done.suite.data.slots == 2 and done.diffusion.T == done.suite.diffusion.levels
    assert done.eval_set.frames.shape[:2] == (2, 6)  # clips x (context + horizon)
    ck = torch.load(swept / "checkpoints" / "none[slots=2]-s0.pt", map_location="cpu", weights_only=True)
    assert all(torch.equal(v, done.model.state_dict()[k]) for k, v in ck["model"].items())
