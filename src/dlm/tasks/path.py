"""The synthetic planning ("subgoal imbalance") path task of MGDM, re-implemented.

Graph construction (as ``data/synthetic_graph.py`` of MGDM's released data does it, with
``nodes_per_chain`` = k):

1. draw a branch position ``sep`` uniformly from 0..k-1 and 2k-1 distinct node ids from
   0..``nodes``-1 in random order (``nodes`` defaults to 2k; the reference shuffles the 2k ids
   and overwrites one, which gives the same distribution);
2. chain 1 is the first k ids ``a0 .. a(k-1)``; chain 2 is the other k-1 ids with ``a(sep)``
   inserted at position ``sep``, so both chains hold the shared node at the same position;
3. the edges are the k-1 consecutive pairs of each chain, 2(k-1) directed edges in all (10 for
   k = 6, over 11 of the 12 ids), shuffled; start = ``a0``, goal = ``a(k-1)``.

From the start the only way on is along chain 1 up to the shared node ``a(sep)``; there both
``a(sep+1)`` and chain 2's next node leave it, and only chain 1 reaches the goal (chain 2 runs
on to a dead end). So the start→goal path is unique (the graph is acyclic), and the planning
distance PD = k-1-sep is the number of steps from the branch point to the goal: PD 0 means no
choice at all (the shared node is the goal, where chain 2 merges in), PD k-1 means the branch
is at the start. ``bucket`` is ``f"pd{PD}"``, read from the prompt's graph.

Examples are distinct as graphs (edge set, start, goal), and ``held_out`` keeps every
test graph out of train. The random draws differ in order from the reference script, so a seed
does not reproduce MGDM's released files.

Text format (alphabet ``0123456789,/-``): an edge is ``u,v``; the prompt is the shuffled edges
joined by ``/``, then ``-start,goal``; the target is chain 1's edges in path order joined by
``/``. The released MGDM example (k = 6, sep = 0, PD = 5; node 10 unused)::

    prompt: "5,9/11,7/2,1/9,3/3,8/7,2/8,4/6,11/5,6/4,0-5,1"
    target: "5,6/6,11/11,7/7,2/2,1"

The verifier is strict: the answer must be a non-empty sequence of edges of the graph, each
starting where the previous one ended, from the start to the goal, visiting no node twice.
MGDM's judge also accepts the reversed path ("1,2/2,7/..."); that lenient exact-match metric
is ``paper_metric``, not ``verify``.

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the strict path check) and
``paper`` (``paper_metric``: MGDM's exact match with the gold path or the gold path reversed).

``render`` shows an answer as its nodes: the target above reads ``5 -> 6 -> 11 -> 7 -> 2 -> 1``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric, Task

__all__ = [
    "PathTask",
    "make_chains",
    "format_edges",
    "format_path",
    "parse_prompt",
    "parse_edges",
    "planning_distance",
    "is_valid_path",
]

ALPHABET = "0123456789,/-"

Edge = tuple[int, int]

_NODE = r"(?:0|[1-9][0-9]*)"
_EDGE_RE = re.compile(rf"({_NODE}),({_NODE})")
_PROMPT_RE = re.compile(rf"(.+)-({_NODE}),({_NODE})")


# --------------------------------------------------------------------------------------------
# Text


def format_edges(edges: Sequence[Edge]) -> str:
    """Edges as "u,v" joined by "/"."""
    return "/".join(f"{u},{v}" for u, v in edges)


def format_path(nodes: Sequence[int]) -> str:
    """The path through `nodes` as its edges "u,v" joined by "/"."""
    return format_edges(list(zip(nodes[:-1], nodes[1:])))


def parse_edges(text: str) -> list[Edge] | None:
    """The edges of "u,v/v,w/..." (canonical decimal ids, no spaces), or None when malformed."""
    edges: list[Edge] = []
    for part in text.split("/"):
        match = _EDGE_RE.fullmatch(part)
        if match is None:
            return None
        edges.append((int(match.group(1)), int(match.group(2))))
    return edges


def parse_prompt(text: str) -> tuple[list[Edge], int, int]:
    """(edges, start, goal) of a prompt "u,v/.../u,v-start,goal"; raises ValueError if malformed."""
    match = _PROMPT_RE.fullmatch(text.strip())
    edges = parse_edges(match.group(1)) if match else None
    if match is None or edges is None:
        raise ValueError(f'a path prompt is "u,v/.../u,v-start,goal", got {text!r:.120}')
    return edges, int(match.group(2)), int(match.group(3))


def is_valid_path(edges: Sequence[Edge], start: int, goal: int, path: Sequence[Edge]) -> bool:
    """True when `path` is a non-empty chain of `edges` from `start` to `goal` with no repeated node."""
    if not path or path[0][0] != start or path[-1][1] != goal:
        return False
    edge_set = set(edges)
    if any(e not in edge_set for e in path):
        return False
    if any(a[1] != b[0] for a, b in zip(path[:-1], path[1:])):
        return False
    nodes = [path[0][0]] + [v for _, v in path]
    return len(set(nodes)) == len(nodes)


def planning_distance(prompt: str) -> int:
    """PD of a prompt: the number of edges from the branch node to the goal along the path.

    The branch node is the node shared by the two chains: the one with two outgoing or two
    incoming edges.
    """
    edges, _, goal = parse_prompt(prompt)
    out_deg: dict[int, int] = {}
    in_deg: dict[int, int] = {}
    succ: dict[int, list[int]] = {}
    for u, v in edges:
        out_deg[u] = out_deg.get(u, 0) + 1
        in_deg[v] = in_deg.get(v, 0) + 1
        succ.setdefault(u, []).append(v)
    shared = [
        x for x in set(out_deg) | set(in_deg) if out_deg.get(x, 0) > 1 or in_deg.get(x, 0) > 1
    ]
    if len(shared) != 1:
        raise ValueError(f"expected one node shared by the two chains, found {shared}: {prompt!r}")
    # Longest distance from the shared node to the goal (the dead-end branch never reaches it).
    best: dict[int, int] = {goal: 0}

    def dist(x: int) -> int:
        if x not in best:
            reach = [d + 1 for d in (dist(y) for y in succ.get(x, [])) if d >= 0]
            best[x] = max(reach, default=-1)
        return best[x]

    pd = dist(shared[0])
    if pd < 0:
        raise ValueError(f"the goal is not reachable from the shared node: {prompt!r}")
    return pd


# --------------------------------------------------------------------------------------------
# Generation


def make_chains(
    rng: random.Random, nodes_per_chain: int, nodes: int
) -> tuple[list[int], list[int], int]:
    """(chain 1, chain 2, sep): two chains of `nodes_per_chain` ids sharing the node at `sep`."""
    k = nodes_per_chain
    sep = rng.randrange(k)
    ids = rng.sample(range(nodes), 2 * k - 1)
    chain1 = ids[:k]
    rest = ids[k:]
    chain2 = rest[:sep] + [chain1[sep]] + rest[sep:]
    return chain1, chain2, sep


def _chain_edges(chain: Sequence[int]) -> list[Edge]:
    return list(zip(chain[:-1], chain[1:]))


def _mentions(k: int, sep: int) -> list[int]:
    """How often each of the 2k-1 nodes is written in a prompt with branch `sep`, most first.

    A chain's inner node is in two edges, its end nodes in one; the shared node adds chain 2's
    edges at it; start and goal are written once more after the '-'.
    """
    chain = [1] + [2] * (k - 2) + [1]
    shared = chain[sep]
    first = [m + (1 if i in (0, k - 1) else 0) for i, m in enumerate(chain)]
    first[sep] += shared
    second = [m for i, m in enumerate(chain) if i != sep]
    return sorted(first + second, reverse=True)


class PathTask(Task):
    """Two chains of `nodes_per_chain` nodes sharing one node; find the start→goal path.

    Node ids are drawn from 0..`nodes`-1 (default 2 * `nodes_per_chain`, as in MGDM).
    """

    name: str = "path"
    unit = "graphs"

    def __init__(self, nodes_per_chain: int = 6, nodes: int | None = None) -> None:
        k = int(nodes_per_chain)
        if k < 2:
            raise DlmUserError(f"nodes_per_chain must be at least 2 (one edge), got {k}")
        self.nodes_per_chain = k
        self.nodes = 2 * k if nodes is None else int(nodes)
        if self.nodes < 2 * k - 1:
            raise DlmUserError(
                f"a graph of two {k}-node chains uses {2 * k - 1} distinct ids; "
                f"raise nodes to at least {2 * k - 1} (got {self.nodes})"
            )

    def __repr__(self) -> str:
        return f"PathTask(nodes_per_chain={self.nodes_per_chain}, nodes={self.nodes})"

    def _id_lengths(self) -> list[int]:
        """Character lengths of the `2k-1` longest ids, longest first."""
        top = range(self.nodes - 1, self.nodes - 2 * self.nodes_per_chain, -1)
        return [len(str(i)) for i in top]

    @property
    def max_answer_tokens(self) -> int:
        """The longest target plus [EOS]: the k-2 longest ids twice (inner nodes), two once."""
        k = self.nodes_per_chain
        lengths = self._id_lengths()
        digits = 2 * sum(lengths[: k - 2]) + sum(lengths[k - 2 : k])
        return digits + (k - 1) + (k - 2) + 1

    @property
    def max_prompt_tokens(self) -> int:
        """The longest prompt: the longest ids on the most-mentioned nodes, over every `sep`."""
        k = self.nodes_per_chain
        lengths = self._id_lengths()
        digits = max(
            sum(m * n for m, n in zip(_mentions(k, sep), lengths, strict=True)) for sep in range(k)
        )
        edges = 2 * (k - 1)
        # A ',' per edge and in the suffix, '/' between edges, one '-'.
        return digits + (edges + 1) + (edges - 1) + 1

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over the digits, ',', '/' and '-'."""
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        """True when `answer` is a valid start→goal path in the prompt's edge set (strict)."""
        try:
            edges, start, goal = parse_prompt(example.prompt)
        except ValueError:
            return False
        path = parse_edges(answer.strip())
        return path is not None and is_valid_path(edges, start, goal, path)

    # ---- extras -------------------------------------------------------------------------

    def distinct_key(self, example: Example) -> tuple[frozenset[Edge], int, int]:
        """The graph (edge set, start, goal): examples are distinct graphs, and no test graph
        reappears in train, not even with its edges in another order."""
        edges, start, goal = parse_prompt(example.prompt)
        return frozenset(edges), start, goal

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Graphs drawn from `rng` (``generate``/``held_out`` take distinct ones)."""
        while True:
            yield self.make_example(rng)

    def bucket(self, example: Example) -> str:
        """f"pd{pd}", pd = nodes_per_chain - 1 - sep (read from the prompt's graph)."""
        return f"pd{planning_distance(example.prompt)}"

    def answer_of(self, text: str) -> str | None:
        """The answer text stripped, or None when it is not a "u,v/v,w/..." edge list."""
        s = text.strip()
        return s if parse_edges(s) is not None else None

    def render(self, prompt: str, answer: str) -> str:
        """The path as its nodes, ``"5,6/6,11/11,7"`` as ``"5 -> 6 -> 11 -> 7"``; unchanged
        unless the answer is an edge list whose every edge starts where the last one ended."""
        edges = parse_edges(answer.strip())
        if edges is None or any(a[1] != b[0] for a, b in zip(edges[:-1], edges[1:])):
            return answer
        nodes = [edges[0][0]] + [v for _, v in edges]
        return " -> ".join(map(str, nodes))

    def paper_metric(self, example: Example, answer: str) -> bool:
        """MGDM's judge: exact match with the gold path or with the gold path reversed."""
        s = answer.strip()
        gold = parse_edges(example.target)
        if gold is None:
            return s == example.target
        nodes = [gold[0][0]] + [v for _, v in gold]
        return s in (example.target, format_path(nodes[::-1]))

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "paper": self.paper_metric}

    def make_example(self, rng: random.Random) -> Example:
        """One graph and its path, drawn from `rng`."""
        k = self.nodes_per_chain
        chain1, chain2, sep = make_chains(rng, k, self.nodes)
        edges = _chain_edges(chain1) + _chain_edges(chain2)
        rng.shuffle(edges)
        start, goal = chain1[0], chain1[-1]
        prompt = f"{format_edges(edges)}-{start},{goal}"
        meta = {"sep": sep, "pd": k - 1 - sep}
        return Example(prompt, format_path(chain1), meta)
