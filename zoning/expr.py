"""A tiny, safe expression language for model rules, evaluated column-wise on a DataFrame.

``built_up_share >= 0.2 and (admin_type == 'DISTRICT' or not score_ecological > 4)``. Only comparisons, and / or /
not, names, numbers and strings are allowed; a comparison with a missing value (NaN) is false.
"""
from __future__ import annotations

import ast
import functools
import operator

import numpy as np
import pandas as pd

_CMP = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
        ast.Eq: operator.eq, ast.NotEq: operator.ne}


MAX_DEPTH = 50  # far beyond any rule a planner writes; deeper would exhaust the evaluator's stack


def _short(text: str, n: int = 80) -> str:
    return repr(text if len(text) <= n else text[:n] + "…")


def parse(text: str) -> ast.Expression:
    """Parse an expression, raising ValueError with a readable message if it uses anything not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, MemoryError, RecursionError) as exc:
        msg = getattr(exc, "msg", None) or "nested too deeply"
        raise ValueError(f"syntax error in {_short(text)}: {msg}") from None
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise ValueError(f"{_short(text)} is nested {depth} levels deep; at most {MAX_DEPTH} are allowed: write "
                         "the rule flatter (and / or of comparisons)")
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare,
                                 ast.Name, ast.Load, ast.Constant, *_CMP)):
            raise ValueError(f"{type(node).__name__} is not allowed in {_short(text)}: use comparisons joined by "
                             "and / or / not")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str)):
            raise ValueError(f"constant {node.value!r} is not allowed in {_short(text)}")
    return tree


def _depth(tree: ast.AST) -> int:
    """How deep the expression nests (without recursion: a hostile text may be thousands deep)."""
    deepest, todo = 0, [(tree, 1)]
    while todo:
        node, d = todo.pop()
        deepest = max(deepest, d)
        todo.extend((c, d + 1) for c in ast.iter_child_nodes(node))
    return deepest


@functools.lru_cache(maxsize=1024)
def names(text: str) -> frozenset[str]:
    """The names an expression uses (cached: a rule's names are asked for once per county in the explanations)."""
    return frozenset(n.id for n in ast.walk(parse(text)) if isinstance(n, ast.Name))


def evaluate(text: str, frame: pd.DataFrame) -> np.ndarray:
    """Evaluate to a boolean array with one entry per row of ``frame``."""
    n = len(frame)

    def ev(node):
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.BoolOp):
            vals = [as_bool(ev(v)) for v in node.values]
            out = vals[0]
            for v in vals[1:]:
                out = (out & v) if isinstance(node.op, ast.And) else (out | v)
            return out
        if isinstance(node, ast.UnaryOp):
            return ~as_bool(ev(node.operand))
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            out = np.ones(n, dtype=bool)
            for op, comp in zip(node.ops, node.comparators):
                right = ev(comp)
                with np.errstate(invalid="ignore"):
                    res = np.asarray(_CMP[type(op)](left, right), dtype=bool)
                out &= res & ~_missing(left) & ~_missing(right)
                left = right
            return out
        if isinstance(node, ast.Name):
            if node.id not in frame:  # an indicator the user did not supply: missing everywhere
                return np.full(n, np.nan)
            return frame[node.id].to_numpy()
        if isinstance(node, ast.Constant):
            return np.full(n, node.value, dtype=object if isinstance(node.value, str) else float)
        raise ValueError(f"cannot evaluate {ast.dump(node)}")

    return as_bool(ev(parse(text)))


def _missing(a) -> np.ndarray:
    return np.asarray(pd.isna(a), dtype=bool)


def as_bool(a) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        return arr
    return np.asarray(pd.Series(arr).fillna(False).astype(bool))
