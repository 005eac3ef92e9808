"""Tests for the synthetic planning path task: construction, PD buckets, splits, verifier."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from dlm.data.char_tokenizer import UNK_ID
from dlm.tasks.base import Example, Task
from dlm.tasks.path import (
    PathTask,
    format_path,
    is_valid_path,
    make_chains,
    parse_edges,
    parse_prompt,
    planning_distance,
)

# The example from MGDM's released path data (6-node chains, branch at the start).
RELEASED = Example(
    "5,9/11,7/2,1/9,3/3,8/7,2/8,4/6,11/5,6/4,0-5,1",
    "5,6/6,11/11,7/7,2/2,1",
)
RELEASED_REVERSED = "1,2/2,7/7,11/11,6/6,5"


def _key(e: Example) -> tuple[frozenset[tuple[int, int]], int, int]:
    edges, start, goal = parse_prompt(e.prompt)
    return frozenset(edges), start, goal


@pytest.fixture(scope="module")
def examples() -> list[Example]:
    return PathTask().generate(600, seed=0)


def test_is_a_task() -> None:
    task = PathTask()
    assert isinstance(task, Task)
    assert task.name == "path"
    assert (task.nodes_per_chain, task.nodes) == (6, 12)
    for bad in ({"nodes_per_chain": 1}, {"nodes_per_chain": 6, "nodes": 10}):
        with pytest.raises(ValueError):
            PathTask(**bad)
    assert PathTask(6, nodes=11).nodes == 11


def test_released_example() -> None:
    task = PathTask()
    edges, start, goal = parse_prompt(RELEASED.prompt)
    assert len(edges) == 10 and (start, goal) == (5, 1)
    assert len({x for e in edges for x in e}) == 11  # 12 ids, one unused (10)
    assert task.verify(RELEASED, RELEASED.target)
    assert task.bucket(RELEASED) == "pd5"  # the branch is at the start
    assert planning_distance(RELEASED.prompt) == 5
    assert task.answer_of(f" {RELEASED.target}\n") == RELEASED.target
    # Strict verifier: the reversed path is not a start->goal path; MGDM's judge accepts it.
    assert not task.verify(RELEASED, RELEASED_REVERSED)
    assert task.paper_metric(RELEASED, RELEASED_REVERSED)
    assert task.paper_metric(RELEASED, RELEASED.target)
    assert not task.paper_metric(RELEASED, "5,9/9,3/3,8/8,4/4,0")
    # The other branch from the start is a dead end.
    assert not task.verify(RELEASED, "5,9/9,3/3,8/8,4/4,0")


def test_construction_matches_the_reference() -> None:
    rng = random.Random(3)
    for _ in range(200):
        chain1, chain2, sep = make_chains(rng, 6, 12)
        assert len(chain1) == len(chain2) == 6
        assert chain2[sep] == chain1[sep]
        assert len(set(chain1) | set(chain2)) == 11
        assert set(chain1) & set(chain2) == {chain1[sep]}
        assert all(0 <= x < 12 for x in chain1 + chain2)


def test_generated_examples(examples: list[Example]) -> None:
    task = PathTask()
    assert len({_key(e) for e in examples}) == len(examples)
    for e in examples:
        edges, start, goal = parse_prompt(e.prompt)
        assert len(edges) == len(set(edges)) == 10
        path = parse_edges(e.target)
        assert path is not None and len(path) == 5
        assert (path[0][0], path[-1][1]) == (start, goal)
        assert task.verify(e, e.target)
        assert e.meta["pd"] == 5 - e.meta["sep"]
        assert task.bucket(e) == f"pd{e.meta['pd']}"
        assert task.answer_of(e.target) == e.target
        assert len(e.target) + 1 <= task.max_answer_tokens
        assert len(e.prompt) <= task.max_prompt_tokens
        assert set(e.prompt + e.target) <= set("0123456789,/-")
    # Tight bounds: the longest strings reach them (ids 10 and 11 are the two-digit ones).
    assert task.max_answer_tokens == 24  # MGDM's AR max_new_tokens for path
    assert max(len(e.target) for e in examples) + 1 == 24
    assert task.max_prompt_tokens == 49


def test_pd_buckets_cover_every_value(examples: list[Example]) -> None:
    counts = Counter(PathTask().bucket(e) for e in examples)
    assert set(counts) == {f"pd{d}" for d in range(6)}
    assert min(counts.values()) > 60  # sep is uniform
    small = PathTask(3).generate(60, seed=0)
    assert {PathTask(3).bucket(e) for e in small} == {"pd0", "pd1", "pd2"}


def _all_paths(edges: list[tuple[int, int]], node: int, goal: int, nodes: list[int]) -> list[str]:
    """Every simple path from `node` to `goal` (prefixed by `nodes`) by depth-first search."""
    if node == goal:
        return [format_path(nodes)]
    out: list[str] = []
    for u, v in edges:
        if u == node and v not in nodes:
            out += _all_paths(edges, v, goal, nodes + [v])
    return out


def test_path_is_unique(examples: list[Example]) -> None:
    for e in examples[:100]:
        edges, start, goal = parse_prompt(e.prompt)
        assert _all_paths(edges, start, goal, [start]) == [e.target]


def _corruptions(e: Example) -> list[str]:
    edges, start, goal = parse_prompt(e.prompt)
    path = parse_edges(e.target)
    assert path is not None
    nodes = [start] + [v for _, v in path]
    all_ids = {x for edge in edges for x in edge}
    out = [
        format_path(nodes[:-1]),  # ends before the goal
        format_path(nodes[1:]),  # starts after the start
        format_path(nodes[:2] + nodes[3:]),  # skips a node: an edge not in the graph
        "/".join(e.target.split("/")[:2] + e.target.split("/")[3:]),  # a missing edge
        "/".join(e.target.split("/")[::-1]),  # edges in reverse order: chain broken
        RELEASED_REVERSED if e is RELEASED else format_path(nodes[::-1]),  # goal -> start
        e.target + "/" + f"{goal},{start}",  # runs on past the goal
        e.target.replace(",", ";", 1),
        e.target.replace("/", " ", 1),
        "",
        e.target + "/",
    ]
    # An edge not in the graph at the first step, and a path ending at a non-goal node.
    stranger = next(x for x in sorted(all_ids) if (start, x) not in edges and x != start)
    out.append(format_path([start, stranger] + nodes[2:]))
    # Follow the dead-end branch from the shared node when there is one.
    shared = [u for u in all_ids if sum(1 for a, _ in edges if a == u) == 2]
    if shared:
        s = shared[0]
        i = nodes.index(s)
        other = next(v for a, v in edges if a == s and v != nodes[i + 1])
        branch = nodes[: i + 1] + [other]
        while True:
            nxt = [v for a, v in edges if a == branch[-1]]
            if not nxt:
                break
            branch.append(nxt[0])
        assert branch[-1] != goal
        out.append(format_path(branch))
    return out


def test_verifier_rejects_corruptions(examples: list[Example]) -> None:
    task = PathTask()
    for e in [RELEASED, *examples[:200]]:
        assert task.verify(e, e.target)
        assert task.verify(e, f"\n{e.target}  ")
        for bad in _corruptions(e):
            assert not task.verify(e, bad), bad
    # A node id with a leading zero is not the node.
    assert not task.verify(RELEASED, "5,06/06,11/11,7/7,2/2,1")
    # Path checks against a hand-made graph: a repeated node (a cycle) is not a simple path.
    cyc = [(0, 1), (1, 2), (2, 0), (2, 3)]
    assert is_valid_path(cyc, 0, 3, [(0, 1), (1, 2), (2, 3)])
    assert not is_valid_path(cyc, 0, 3, [(0, 1), (1, 2), (2, 0), (0, 1), (1, 2), (2, 3)])
    assert not is_valid_path(cyc, 0, 3, [])


def test_answer_of() -> None:
    task = PathTask()
    assert task.answer_of("  1,2/2,3 ") == "1,2/2,3"
    assert task.answer_of("") is None
    assert task.answer_of("1,2/") is None
    assert task.answer_of("1,2 2,3") is None


def test_determinism() -> None:
    a = PathTask().generate(100, seed=5)
    assert PathTask().generate(100, seed=5) == a
    assert PathTask().generate(30, seed=5) == a[:30]
    assert [e.prompt for e in PathTask().generate(100, seed=6)] != [e.prompt for e in a]
    assert PathTask().generate(0, seed=1) == []


def test_splits_disjoint() -> None:
    task = PathTask()
    train, test = task.held_out(500, 100, seed=0)
    assert len(train) == 500 and len(test) == 100
    assert not {_key(e) for e in train} & {_key(e) for e in test}
    assert len({_key(e) for e in train}) == 500
    assert task.held_out(500, 100, seed=0) == (train, test)
    # A tiny graph family collides often: still disjoint and distinct.
    tiny = PathTask(2, nodes=4)  # 4*3*2 id orders x 2 branch positions = 48 graphs
    tr, te = tiny.held_out(30, 10, seed=0)
    keys = [_key(e) for e in tr + te]
    assert len(set(keys)) == 40
    with pytest.raises(ValueError, match="distinct graphs"):
        tiny.generate(49, seed=0)


def test_other_sizes() -> None:
    task = PathTask(7, nodes=40)
    exs = task.generate(200, seed=1)
    for e in exs:
        assert task.verify(e, e.target)
        assert len(parse_prompt(e.prompt)[0]) == 12
        assert len(e.target) + 1 <= task.max_answer_tokens
        assert len(e.prompt) <= task.max_prompt_tokens
    assert {task.bucket(e) for e in exs} == {f"pd{d}" for d in range(7)}


def test_tokenizer_round_trip(examples: list[Example]) -> None:
    tok = PathTask().tokenizer()
    for text in [RELEASED.prompt, RELEASED.target] + [e.prompt for e in examples[:30]]:
        ids = tok(text)["input_ids"]
        assert len(ids) == len(text)
        assert UNK_ID not in ids
        assert tok.decode(ids, skip_special_tokens=True) == text
