from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from app.domain.profiles.merge import deep_merge


class TestDeepMerge:
    def test_objects_merge_recursively(self) -> None:
        base = {"layers": {"tts": {"engine": "cartesia", "voice": "a"}, "llm": {"model": "m"}}}
        overrides = {"layers": {"tts": {"voice": "b"}}}
        assert deep_merge(base, overrides) == {
            "layers": {"tts": {"engine": "cartesia", "voice": "b"}, "llm": {"model": "m"}}
        }

    def test_scalars_replace(self) -> None:
        assert deep_merge({"a": 1, "b": "x"}, {"a": "one"}) == {"a": "one", "b": "x"}

    def test_lists_replace_and_never_concatenate(self) -> None:
        assert deep_merge({"tags": ["a", "b"]}, {"tags": ["c"]}) == {"tags": ["c"]}
        assert deep_merge({"tags": ["a"]}, {"tags": []}) == {"tags": []}

    def test_a_scalar_replaces_an_object(self) -> None:
        assert deep_merge({"layers": {"tts": {"x": 1}}}, {"layers": {"tts": "off"}}) == {
            "layers": {"tts": "off"}
        }

    def test_an_object_replaces_a_scalar(self) -> None:
        assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}

    def test_new_keys_are_added(self) -> None:
        assert deep_merge({"a": 1}, {"b": {"c": 2}}) == {"a": 1, "b": {"c": 2}}

    def test_null_removes_the_key(self) -> None:
        base = {"a": 1, "layers": {"tts": {"voice": "v", "speed": 1}}}
        assert deep_merge(base, {"a": None, "layers": {"tts": {"speed": None}}}) == {
            "layers": {"tts": {"voice": "v"}}
        }

    def test_null_for_a_missing_key_is_a_no_op(self) -> None:
        assert deep_merge({"a": 1}, {"b": None, "c": {"d": None}}) == {"a": 1, "c": {}}

    def test_null_removes_a_whole_object(self) -> None:
        assert deep_merge({"layers": {"tts": {"v": 1}, "llm": {}}}, {"layers": {"tts": None}}) == {
            "layers": {"llm": {}}
        }

    def test_nulls_inside_a_new_object_are_dropped(self) -> None:
        assert deep_merge({"a": 1}, {"a": {"b": None, "c": 2}}) == {"a": {"c": 2}}

    def test_empty_overrides_give_an_equal_copy(self) -> None:
        base = {"a": [1, {"b": 2}]}
        result = deep_merge(base, {})
        assert result == base
        assert result is not base

    def test_empty_object_override_keeps_the_object(self) -> None:
        assert deep_merge({"a": {"b": 1}}, {"a": {}}) == {"a": {"b": 1}}

    def test_inputs_are_not_mutated(self) -> None:
        base = {"a": {"b": [1, 2], "c": 1}, "d": None}
        overrides = {"a": {"b": [3], "c": None, "e": {"f": None}}, "d": 5}
        base_before, overrides_before = copy.deepcopy(base), copy.deepcopy(overrides)
        deep_merge(base, overrides)
        assert base == base_before
        assert overrides == overrides_before

    def test_result_shares_no_mutable_structure_with_the_inputs(self) -> None:
        base: dict[str, Any] = {"kept": {"list": [1]}, "merged": {"x": [1]}}
        overrides: dict[str, Any] = {"merged": {"y": [2]}, "new": {"z": [3]}}
        result = deep_merge(base, overrides)
        result["kept"]["list"].append(9)
        result["merged"]["x"].append(9)
        result["merged"]["y"].append(9)
        result["new"]["z"].append(9)
        assert base == {"kept": {"list": [1]}, "merged": {"x": [1]}}
        assert overrides == {"merged": {"y": [2]}, "new": {"z": [3]}}


# Property checks over seeded random JSON-like trees: deterministic, no extra dependency.

_KEYS = ["a", "b", "c", "d", "e"]


def _value(rng: random.Random, depth: int, *, nulls: bool) -> Any:
    choice = rng.randrange(6 if depth < 3 else 4)
    if choice == 0:
        return rng.randrange(-5, 5)
    if choice == 1:
        return rng.choice(["x", "y", ""])
    if choice == 2:
        return None if nulls else rng.choice([True, False])
    if choice == 3:
        return [rng.randrange(3) for _ in range(rng.randrange(3))]
    return _tree(rng, depth + 1, nulls=nulls)


def _tree(rng: random.Random, depth: int = 0, *, nulls: bool) -> dict[str, Any]:
    keys = rng.sample(_KEYS, rng.randrange(len(_KEYS) + 1))
    return {key: _value(rng, depth, nulls=nulls) for key in keys}


def _leaves(
    tree: dict[str, Any], prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    found: list[tuple[tuple[str, ...], Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            found.extend(_leaves(value, (*prefix, key)))
        else:
            found.append(((*prefix, key), value))
    return found


def _get(tree: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = tree
    for key in path:
        node = node[key]
    return node


def _has(tree: dict[str, Any], path: tuple[str, ...]) -> bool:
    node: Any = tree
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


@pytest.mark.parametrize("seed", range(300))
def test_merge_properties_hold_on_random_trees(seed: int) -> None:
    rng = random.Random(seed)
    base = _tree(rng, nulls=False)
    overrides = _tree(rng, nulls=True)
    base_before, overrides_before = copy.deepcopy(base), copy.deepcopy(overrides)

    result = deep_merge(base, overrides)

    assert deep_merge(base, {}) == base
    # Only keys the overrides delete can disappear from the top level.
    deleted = {key for key, value in overrides.items() if value is None}
    assert set(result) >= set(base) - deleted
    assert not deleted & set(result)
    # Every non-null override leaf wins.
    for path, value in _leaves(overrides):
        if value is None:
            assert not _has(result, path)
        elif value == {}:
            assert isinstance(_get(result, path), dict)
        else:
            assert _get(result, path) == value
    # Applying the same overrides twice changes nothing more.
    assert deep_merge(result, overrides) == result
    assert base == base_before
    assert overrides == overrides_before
