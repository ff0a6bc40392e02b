"""The policy registry: one table that names every policy the workbench knows."""

from __future__ import annotations

import pytest

from agents.logs.behaviour import resolve_policy
from agents.run.model_stages import BASELINE_NAMES, MODEL_FOLDERS
from policies.base import Policy
from policies.registry import (
    POLICIES,
    PolicyEntry,
    baseline_names,
    describe,
    learned_folders,
    make_baseline,
)


def test_every_policy_is_explained_and_is_a_baseline_or_a_learned_folder() -> None:
    for name, entry in POLICIES.items():
        assert entry.name == name and len(entry.about) > 10, name
        assert (entry.baseline is None) != (entry.folder is None)
    assert describe("engaging") and describe("no-such-policy") == ""


def test_baselines_are_built_by_name_and_unknown_names_are_refused() -> None:
    for name in baseline_names():
        assert isinstance(make_baseline(name), Policy)
    assert "oracle" not in baseline_names(privileged=False)
    with pytest.raises(ValueError, match="allowed"):
        make_baseline("pretrained")  # learned, not a baseline
    with pytest.raises(ValueError, match="give a baseline class or a folder"):
        PolicyEntry("both", "a policy that is both", POLICIES["random"].baseline, folder="x")


def test_the_run_directory_and_the_behaviour_policies_read_the_registry() -> None:
    assert baseline_names() == BASELINE_NAMES
    assert {n: f"checkpoints/{f}" for n, f in learned_folders().items()} == MODEL_FOLDERS
    fn, name = resolve_policy("engaging")  # a registered baseline that logs has no own copy of
    assert name == "engaging" and callable(fn)
    with pytest.raises(ValueError, match="engaging"):
        resolve_policy("no-such-policy")
