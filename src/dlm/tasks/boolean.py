"""Boolean-expression evaluation with one thought per operator (DoT's boolean-logic task).

The DoT paper evaluates boolean logic but publishes no data, so the format is ours.

Prompt: the values of the variables a, b, c, ... (``variables`` of them, all listed, in
order), a ":", then the expression::

    prompt  "a=1,b=0,c=1:(a&b)|!c"
    target  "a&b=0,!c=0,0|0=0 #### 0"

Expressions use the variables, the binary operators "&" (and), "|" (or), "^" (xor) and the
prefix "!" (not). Every binary operation is wrapped in parentheses except the outermost one,
so no precedence rules are needed: "x op y" at the top, "(x op y)" inside, and "!" applies to
a variable or a parenthesised operation ("!c", "!(a^b)"; never "!!").

Target: one thought per operator, in evaluation order: post-order, left operand before right
(innermost first, left to right). A thought is the operator applied to its operands as they
stand after the earlier thoughts, "=", and its value: an operand is written as the variable
name when it is a variable, and as the 0/1 value computed by an earlier thought otherwise.
So the thoughts of "(a&b)|!c" are "a&b=0", "!c=0", "0|0=0". Thoughts are joined by ",",
then " #### " and the value of the whole expression (0 or 1). With ``cot=False`` (the
answer-only baseline) the target is just "#### 0".

Thoughts for a multi-pass sampler: `thoughts` splits the rationale on "," and gives the answer
part "#### 0" last; `join_thoughts` inverts it exactly (" " before a part starting with
"####", "," otherwise, so joining the first k thoughts gives the start of the target).

Generation, from one `random.Random(seed)`: the number of binary operators k is uniform over
[1, 2^depth - 1]; the tree shape is drawn top-down, each binary node giving its left subtree a
uniform share of the remaining operators that keeps the nesting depth of binary operators at
most ``depth``; operators are uniform over & | ^, leaves uniform over the variables; every node
(the root included) is negated with probability ``neg_prob``, except a negation's direct
child; the variable values are uniform bits.

``bucket`` is the number of operators, "!" included (= the number of thoughts). `verify`
checks only the final answer (text after the last "####") against the value computed from the
prompt; `verify_rationale` checks every thought too. Examples are distinct prompts; in
`held_out` no test *expression* (the text after ":") occurs in train, with any values.
Alphabet: "01abcdefghij&|^!()=,:# " (23 characters, space included).

Metrics (``task.metrics``, ``dlm eval --metric NAME``): ``verify`` (the final answer) and
``rationale`` (``verify_rationale``: every thought and the answer exactly right).
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from transformers import PreTrainedTokenizerFast

from dlm.data.char_tokenizer import build_char_tokenizer
from dlm.errors import DlmUserError
from dlm.tasks.base import Example, Metric
from dlm.tasks.thoughts import ANSWER_MARK, ThoughtTask, join_with_separator, split_thoughts
from dlm.tasks.thoughts import answer_after_mark as answer_of

__all__ = [
    "ALPHABET",
    "BooleanTask",
    "answer_of",
    "evaluate",
    "format_expression",
    "join_thoughts",
    "parse_expression",
    "parse_prompt",
    "steps",
    "thoughts",
]

VARIABLE_NAMES = "abcdefghij"
BINARY_OPS = "&|^"
ALPHABET = "01" + VARIABLE_NAMES + BINARY_OPS + "!()=,:# "
THOUGHT_SEP = ","
MAX_DEPTH = 6
#: An expression tree node: ("v", name) | ("!", child) | (op, left, right), op in "&|^".
Node = tuple[Any, ...]


def _apply(op: str, x: int, y: int) -> int:
    if op == "&":
        return x & y
    if op == "|":
        return x | y
    return x ^ y


# --------------------------------------------------------------------------------------------
# Writing, parsing, evaluating


def format_expression(node: Node, top: bool = True) -> str:
    """The text of `node`: binary operations parenthesised except at the top."""
    kind = node[0]
    if kind == "v":
        return node[1]
    if kind == "!":
        return "!" + format_expression(node[1], top=False)
    text = format_expression(node[1], False) + kind + format_expression(node[2], False)
    return text if top else f"({text})"


def parse_expression(text: str) -> Node:
    """The tree of an expression written by `format_expression`; ValueError when malformed."""

    def fail(i: int) -> ValueError:
        return ValueError(f"malformed boolean expression at position {i}: {text!r:.120}")

    def unary(i: int) -> tuple[Node, int]:
        if i >= len(text):
            raise fail(i)
        ch = text[i]
        if ch == "!":
            child, j = unary(i + 1)
            if child[0] == "!":
                raise fail(i)
            return ("!", child), j
        if ch == "(":
            left, j = unary(i + 1)
            if j >= len(text) or text[j] not in BINARY_OPS:
                raise fail(j)
            right, k = unary(j + 1)
            if k >= len(text) or text[k] != ")":
                raise fail(k)
            return (text[j], left, right), k + 1
        if ch in VARIABLE_NAMES:
            return ("v", ch), i + 1
        raise fail(i)

    node, i = unary(0)
    if i < len(text) and text[i] in BINARY_OPS:
        right, j = unary(i + 1)
        node, i = (text[i], node, right), j
    if i != len(text):
        raise fail(i)
    return node


def parse_prompt(prompt: str) -> tuple[dict[str, int], Node]:
    """(variable values, expression tree) of a prompt "a=1,b=0:expr"."""
    head, sep, expr = prompt.strip().partition(":")
    values: dict[str, int] = {}
    for item in head.split(",") if sep else []:
        name, eq, bit = item.partition("=")
        if not eq or name not in VARIABLE_NAMES or bit not in ("0", "1") or name in values:
            values = {}
            break
        values[name] = int(bit)
    if not values:
        raise ValueError(
            f"a boolean prompt is 'a=0,b=1,...:expression' with distinct variables a-j, "
            f"got {prompt!r:.120}"
        )
    node = parse_expression(expr)
    missing = sorted(_variables(node) - values.keys())
    if missing:
        raise ValueError(f"the prompt gives no value to {missing}: {prompt!r:.120}")
    return values, node


def _variables(node: Node) -> set[str]:
    if node[0] == "v":
        return {node[1]}
    return set().union(*(_variables(child) for child in node[1:]))


def steps(node: Node, values: dict[str, int]) -> tuple[int, list[str]]:
    """(value, thoughts): one thought per operator in post-order, left before right."""
    out: list[str] = []

    def rec(n: Node) -> tuple[int, str]:
        kind = n[0]
        if kind == "v":
            return values[n[1]], n[1]
        if kind == "!":
            v, text = rec(n[1])
            result = 1 - v
            out.append(f"!{text}={result}")
            return result, str(result)
        lv, ltext = rec(n[1])
        rv, rtext = rec(n[2])
        result = _apply(kind, lv, rv)
        out.append(f"{ltext}{kind}{rtext}={result}")
        return result, str(result)

    value, _ = rec(node)
    return value, out


def evaluate(node: Node, values: dict[str, int]) -> int:
    """The value (0 or 1) of `node` under `values`."""
    return steps(node, values)[0]


def _count_ops(node: Node) -> tuple[int, int, int]:
    """(binary operators, negations, nesting depth of binary operators)."""
    kind = node[0]
    if kind == "v":
        return 0, 0, 0
    if kind == "!":
        b, n, d = _count_ops(node[1])
        return b, n + 1, d
    lb, ln, ld = _count_ops(node[1])
    rb, rn, rd = _count_ops(node[2])
    return lb + rb + 1, ln + rn, max(ld, rd) + 1


# --------------------------------------------------------------------------------------------
# Thoughts


def thoughts(target: str) -> list[str]:
    """`target` split into its thoughts (on THOUGHT_SEP), the answer part "#### ..." last."""
    return split_thoughts(target, THOUGHT_SEP)


def join_thoughts(parts: Sequence[str]) -> str:
    """Inverse of `thoughts`; joining the first k thoughts gives the start of the target."""
    return join_with_separator(parts, THOUGHT_SEP)


# --------------------------------------------------------------------------------------------
# Task


class BooleanTask(ThoughtTask):
    """Evaluate a random boolean expression over `variables` variables, thought by thought.

    `depth` (1..6) bounds the nesting of binary operators (1 = a single "x op y"), so an
    expression has 1 .. 2^depth - 1 binary operators; `neg_prob` is the chance that a node is
    negated. With `cot` (default) the target is the thoughts and the answer; without, only
    "#### answer".
    """

    name: str = "boolean"

    def __init__(
        self,
        depth: int = 3,
        variables: int = 4,
        cot: bool = True,
        neg_prob: float = 0.25,
    ) -> None:
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
            raise DlmUserError(f"depth must be an int in [1, {MAX_DEPTH}], got {depth!r}")
        if (
            isinstance(variables, bool)
            or not isinstance(variables, int)
            or not 1 <= variables <= len(VARIABLE_NAMES)
        ):
            raise DlmUserError(
                f"variables must be an int in [1, {len(VARIABLE_NAMES)}] (names a-j), "
                f"got {variables!r}"
            )
        if not isinstance(cot, bool):
            raise DlmUserError(f"cot must be True or False, got {cot!r}")
        if not 0.0 <= float(neg_prob) <= 1.0:
            raise DlmUserError(f"neg_prob must lie in [0, 1], got {neg_prob!r}")
        self.depth = depth
        self.variables = variables
        self.cot = cot
        self.neg_prob = float(neg_prob)
        self._names = VARIABLE_NAMES[:variables]

    def __repr__(self) -> str:
        return (
            f"BooleanTask(depth={self.depth}, variables={self.variables}, cot={self.cot}, "
            f"neg_prob={self.neg_prob})"
        )

    @property
    def max_answer_tokens(self) -> int:
        """An upper bound on len(target) + 1 ([EOS]) over what the generator can produce.

        At most B = 2^depth - 1 binary thoughts of 5 characters ("x&y=v") and, with negation,
        up to 2B + 1 negation thoughts of 4 ("!x=v"), joined by ",", then " #### v".
        """
        if not self.cot:
            return len(f"{ANSWER_MARK} 0") + 1
        tail = len(f" {ANSWER_MARK} 0")
        binary = 2**self.depth - 1
        negations = 2 * binary + 1 if self.neg_prob > 0 else 0
        count = binary + negations
        return 5 * binary + 4 * negations + (count - 1) + tail + 1

    # ---- Task protocol ------------------------------------------------------------------

    def tokenizer(self) -> PreTrainedTokenizerFast:
        """Character-level tokenizer over "01abcdefghij&|^!()=,:# " (ids 5..27)."""
        return build_char_tokenizer(ALPHABET)

    def verify(self, example: Example, answer: str) -> bool:
        """True when the text after the last "####" is the expression's value (0 or 1)."""
        values, node = parse_prompt(example.prompt)
        return answer_of(answer) == str(evaluate(node, values))

    # ---- extras -------------------------------------------------------------------------

    def stream(self, rng: random.Random) -> Iterator[Example]:
        """Examples drawn from `rng`; ``generate``/``held_out`` take distinct prompts."""
        while True:
            yield self.make_example(rng)

    def related_key(self, example: Example) -> str:
        """The expression (the text after ":"): no test expression is in train, with any
        values (test examples come first)."""
        return example.prompt.partition(":")[2]

    def make_example(self, rng: random.Random) -> Example:
        """One example drawn from `rng`."""
        k = rng.randint(1, 2**self.depth - 1)
        node = self._tree(rng, k, self.depth)
        values = {name: rng.randrange(2) for name in self._names}
        return self.example_for(node, values)

    def example_for(self, node: Node, values: dict[str, int]) -> Example:
        """The example of expression `node` under `values` (keys: the first variables)."""
        prompt = ",".join(f"{k}={values[k]}" for k in self._names) + ":" + format_expression(node)
        value, rationale = steps(node, values)
        answer = f"{ANSWER_MARK} {value}"
        target = join_thoughts([*rationale, answer]) if self.cot else answer
        binary, negations, depth = _count_ops(node)
        meta = {"ops": binary + negations, "binary_ops": binary, "depth": depth, "value": value}
        return Example(prompt, target, meta)

    def verify_rationale(self, example: Example, answer: str) -> bool:
        """True when every thought of `answer` and the final answer are right, in the exact
        format and order (the `cot` option does not matter)."""
        values, node = parse_prompt(example.prompt)
        try:
            got = thoughts(answer.strip())
        except ValueError:
            return False
        value, rationale = steps(node, values)
        return got == [*rationale, f"{ANSWER_MARK} {value}"]

    @property
    def metrics(self) -> Mapping[str, Metric]:
        return {**super().metrics, "rationale": self.verify_rationale}

    def bucket(self, example: Example) -> str:
        """The number of operators ("!" included) in the prompt's expression, e.g. "5"."""
        binary, negations, _ = _count_ops(parse_prompt(example.prompt)[1])
        return str(binary + negations)

    # The answer after "####" and the thoughts, as the module functions read and write them.
    answer_of = staticmethod(answer_of)
    thoughts = staticmethod(thoughts)
    join_thoughts = staticmethod(join_thoughts)

    def _tree(self, rng: random.Random, k: int, depth: int) -> Node:
        """A random tree with `k` binary operators nested at most `depth` deep; each node is
        negated with probability `neg_prob` (once at most, so never "!!")."""
        if k == 0:
            node: Node = ("v", self._names[rng.randrange(self.variables)])
        else:
            cap = 2 ** (depth - 1) - 1  # most binary operators a child subtree may hold
            left_k = rng.randint(max(0, k - 1 - cap), min(k - 1, cap))
            op = BINARY_OPS[rng.randrange(3)]
            left = self._tree(rng, left_k, depth - 1)
            right = self._tree(rng, k - 1 - left_k, depth - 1)
            node = (op, left, right)
        if self.neg_prob > 0 and rng.random() < self.neg_prob:
            node = ("!", node)
        return node
