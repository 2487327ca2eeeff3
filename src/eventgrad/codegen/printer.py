"""Print sympy expressions as the body of a small numba function.

A function is described by what it reads (symbol -> array element), what it writes (array element ->
expression) and what it returns; common subexpressions are shared.  Source is built from lists of lines
with an indentation level, never by hand-indenting strings.
"""

from __future__ import annotations

import sympy
from sympy.printing.pycode import PythonCodePrinter


class _Printer(PythonCodePrinter):
    """Python printer that writes math.* calls and plain floats (numba compiles both)."""

    def _print_Symbol(self, expr):  # locals are already valid identifiers
        return expr.name


_PRINTER = _Printer({"fully_qualified_modules": True, "standard": "python3"})


class Lines:
    """A list of source lines with an indentation level."""

    def __init__(self):
        self.lines: list[str] = []
        self.level = 0

    def add(self, line: str = "") -> None:
        self.lines.append("    " * self.level + line if line else "")

    def indent(self, delta: int = 1) -> None:
        self.level += delta

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def print_expr(expr) -> str:
    return _PRINTER.doprint(sympy.sympify(expr))


def emit_function(
    lines: Lines,
    name: str,
    args: list[str],
    reads: dict,
    writes: list[tuple[str, sympy.Expr]],
    returns: sympy.Expr | None = None,
    accumulate: bool = False,
) -> None:
    """Append ``@leaf def name(args)`` computing ``writes`` (``target = expr`` or ``+=``) and ``returns``."""
    exprs = [sympy.sympify(e) for _, e in writes]
    if returns is not None:
        exprs.append(sympy.sympify(returns))
    used = set().union(*(e.free_symbols for e in exprs)) if exprs else set()
    local = {s: sympy.Symbol(f"a{i}", real=True) for i, s in enumerate(sorted(used, key=lambda s: s.name))}
    unknown = [s for s in used if s not in reads]
    if unknown:
        raise RuntimeError(f"code generation for {name}: no source for symbols {sorted(map(str, unknown))}")
    exprs = [e.xreplace(local) for e in exprs]
    replacements, reduced = sympy.cse(exprs, symbols=sympy.numbered_symbols("c"), optimizations="basic")
    lines.add("@leaf")
    lines.add(f"def {name}({', '.join(args)}):")
    lines.indent()
    for s, loc in sorted(local.items(), key=lambda kv: kv[1].name):
        lines.add(f"{loc.name} = {reads[s]}")
    for sym, e in replacements:
        lines.add(f"{sym} = {print_expr(e)}")
    op = "+=" if accumulate else "="
    for (target, _), e in zip(writes, reduced):
        lines.add(f"{target} {op} {print_expr(e)}")
    if returns is not None:
        lines.add(f"return {print_expr(reduced[-1])}")
    elif not writes and not replacements:
        lines.add("pass")
    lines.indent(-1)
    lines.add()
