"""The policy interface: batching helpers, masked top-K, outputs, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest

from policies.base import Policy, PolicyOutput, as_batch, is_batched, masked_top_k
from policies.baselines import EngagingPolicy, OraclePolicy, PopularPolicy, RandomPolicy


def test_is_batched_and_as_batch() -> None:
    single = {"room_mask": np.ones(4, np.int8), "rooms": np.zeros((4, 9), np.float32)}
    assert not is_batched(single)
    batch = as_batch(single)
    assert is_batched(batch)
    assert batch["rooms"].shape == (1, 4, 9)
    assert as_batch(batch)["rooms"].shape == (1, 4, 9)
    with pytest.raises(KeyError, match="room_mask"):
        is_batched({"rooms": np.zeros((4, 9))})
    with pytest.raises(ValueError, match="dims"):
        is_batched({"room_mask": np.ones((1, 2, 3))})


def test_masked_top_k_respects_mask_and_breaks_ties_by_index() -> None:
    scores = np.array([[1.0, 3.0, 3.0, -np.inf, np.nan, 9.0]])
    mask = np.array([[1, 1, 1, 1, 1, 0]])
    # masked slot 5 (score 9) never appears; -inf and NaN rank last, ties by index
    assert masked_top_k(scores, mask, 5).tolist() == [[1, 2, 0, 3, 4]]
    flat = np.zeros((2, 6))
    two = np.array([[0, 1, 0, 1, 1, 0], [1, 1, 1, 0, 0, 0]])
    assert masked_top_k(flat, two, 3).tolist() == [[1, 3, 4], [0, 1, 2]]
    with pytest.raises(ValueError, match="row 0 has 3 live room"):
        masked_top_k(flat, two, 4)
    with pytest.raises(ValueError, match="must both be"):
        masked_top_k(flat, two[:1], 1)


def test_masked_top_k_all_neg_inf_still_picks_live_slots() -> None:
    scores = np.full((1, 4), -np.inf)
    assert masked_top_k(scores, np.array([[0, 0, 1, 1]]), 2).tolist() == [[2, 3]]


def test_policy_output_shapes_and_action() -> None:
    out = PolicyOutput(np.array([3, 1]), np.array([0.5, 0.5]))
    assert out.batch_size == 2 and out.action(1) == 1 and isinstance(out.action(), int)
    slate = PolicyOutput(np.array([[3, 1, 2]]))
    assert slate.action().tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="propensities"):
        PolicyOutput(np.array([1, 2]), np.array([0.5]))


@pytest.mark.parametrize(
    "policy",
    [
        PopularPolicy(name="pop", slate_size=3),
        EngagingPolicy(reward_weights={"like": 2.0}, gift_value=10.0),
        OraclePolicy(),
        RandomPolicy(7, slate_size=2),
    ],
    ids=lambda p: type(p).__name__,
)
def test_save_load_round_trip(policy: Policy, tmp_path) -> None:
    path = policy.save(tmp_path / "sub" / "p.json")
    meta = json.loads(path.read_text())
    assert meta["class"].endswith(type(policy).__qualname__)
    loaded = Policy.load(path)
    assert type(loaded) is type(policy)
    assert loaded.get_config() == policy.get_config()
    assert not list(path.parent.glob(".*.tmp"))  # no temporary file left behind


def test_loaded_random_policy_continues_the_same_stream(tmp_path) -> None:
    obs = {"room_mask": np.ones((1, 50), np.int8)}
    a = RandomPolicy(np.random.default_rng(3))
    a.act(obs)
    a.save(tmp_path / "r.json")
    b = RandomPolicy.load(tmp_path / "r.json")
    assert [a.act(obs).action() for _ in range(5)] == [b.act(obs).action() for _ in range(5)]


def test_load_rejects_foreign_and_corrupt_files(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="not a policy file"):
        Policy.load(bad)
    bad.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ValueError, match="readable"):
        Policy.load(bad)
    outside = tmp_path / "outside.json"
    outside.write_text(
        json.dumps({"format": "liveenv.policy", "version": 1, "class": "os:system", "config": {}})
    )
    with pytest.raises(ValueError, match="outside"):
        Policy.load(outside)
    PopularPolicy().save(tmp_path / "pop.json")
    with pytest.raises(ValueError, match="not a RandomPolicy"):
        RandomPolicy.load(tmp_path / "pop.json")
    wrong = tmp_path / "wrong.json"
    wrong.write_text(
        json.dumps(
            {
                "format": "liveenv.policy",
                "version": 1,
                "class": "policies.baselines:PopularPolicy",
                "config": {"bogus": 1},
            }
        )
    )
    with pytest.raises(ValueError, match="does not fit PopularPolicy"):
        Policy.load(wrong)
    with pytest.raises(ValueError, match="slate_size"):
        PopularPolicy(slate_size=0)
    with pytest.raises(FileNotFoundError):
        Policy.load(tmp_path / "missing.json")


class _Arrays(PopularPolicy):
    """A policy with array state, saved as .npz."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.w = np.zeros(3)

    def get_state(self) -> dict[str, np.ndarray]:
        return {"w": self.w}

    def set_state(self, state) -> None:
        self.w = np.asarray(state["w"])


def test_array_state_round_trips_through_npz(tmp_path, monkeypatch) -> None:
    import policies.baselines as mod

    monkeypatch.setattr(mod, "_Arrays", _Arrays, raising=False)
    monkeypatch.setattr(_Arrays, "__module__", "policies.baselines")
    p = _Arrays(name="arr")
    p.w = np.array([1.0, 2.0, 3.0])
    path = p.save(tmp_path / "arr.npz")
    assert path.read_bytes()[:2] == b"PK"
    q = Policy.load(path)
    assert isinstance(q, _Arrays) and q.w.tolist() == [1.0, 2.0, 3.0] and q.name == "arr"
