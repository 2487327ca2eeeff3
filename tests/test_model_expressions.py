"""Tests of the safe expression parser and the identifier rules."""

import os

import numpy as np
import pytest
import sympy

from eventgrad.model import ALLOWED_FUNCTIONS, RESERVED_NAMES, ModelError, parse_expression, symbol
from eventgrad.model.expressions import free_names
from eventgrad.model.identifiers import check_parameter_name, check_variable_name

WHERE = "the ODE of 'v' of this neuron"
v, u, tau, Isyn = (symbol(name) for name in ("v", "u", "tau", "Isyn"))


def parse(text, **kwargs):
    return parse_expression(text, where=WHERE, **kwargs)


def same(a, b) -> bool:
    return sympy.simplify(a - b) == 0


# ---- what is accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("(-v + Isyn) / tau", (-v + Isyn) / tau),
        ("-v/tau + Isyn/tau", (-v + Isyn) / tau),
        ("+v - -u", v + u),
        ("v**2 * u", v**2 * u),
        ("2 * v ** 3", 2 * v**3),
        ("-v**2", -(v**2)),
        ("0.04 * v**2 + 5*v + 140 - u", sympy.Float(0.04) * v**2 + 5 * v + 140 - u),
        ("exp(-v / tau) * sqrt(u)", sympy.exp(-v / tau) * sympy.sqrt(u)),
        ("pow(v, 3)", v**3),
        ("abs(v) + min(v, u) + max(u, v, 1)", sympy.Abs(v) + sympy.Min(v, u) + sympy.Max(u, v, 1)),
        ("  v + 1  ", v + 1),
        ("(v\n + 1)", v + 1),
    ],
)
def test_parsed_expression_equals_hand_built_sympy(text, expected):
    # A wrong operator mapping, precedence or function table would change the mathematics.
    assert same(parse(text), expected)


@pytest.mark.parametrize("name", sorted(ALLOWED_FUNCTIONS))
def test_every_whitelisted_function_maps_to_its_sympy_function(name):
    # A name mapped to the wrong sympy function would silently change a model.
    args = "v, u" if name in ("min", "max", "pow") else "v"
    expected = ALLOWED_FUNCTIONS[name](*((v, u) if name in ("min", "max", "pow") else (v,)))
    assert parse(f"{name}({args})") == expected


def test_symbols_are_real_and_equal_to_symbol():
    # The engine builds its symbols with symbol(); a parsed symbol with other assumptions would not match.
    expr = parse("v + u")
    assert expr.free_symbols == {symbol("v"), symbol("u")}
    assert all(s.is_real for s in expr.free_symbols)
    assert symbol("v") != sympy.Symbol("v")


def test_sympy_names_stay_plain_symbols():
    # sympify would turn these into sympy's beta function, E, the imaginary unit, gamma, pi, ...
    expr = parse("beta + E + I + S + N + gamma + pi + Q")
    assert free_names(expr) == {"beta", "E", "I", "S", "N", "gamma", "pi", "Q"}
    assert same(expr, sum(symbol(n) for n in ("beta", "E", "I", "S", "N", "gamma", "pi", "Q")))


def test_number_types_are_exact_where_written_exact():
    # Integer division must not truncate (1/2 is not 0) and floats must stay floats.
    assert parse("1/2") == sympy.Rational(1, 2)
    assert parse("3") == sympy.Integer(3) and isinstance(parse("3"), sympy.Integer)
    assert isinstance(parse("2.5"), sympy.Float) and float(parse("2.5")) == 2.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, sympy.Float(1.0)),
        (0, sympy.Integer(0)),
        (np.float64(-65.0), sympy.Float(-65.0)),
        (np.int64(2), 2),
    ],
)
def test_numbers_are_accepted_in_place_of_text(value, expected):
    # mlGeNN models write resets as numbers; refusing them would break ported models.
    result = parse(value)
    assert result == expected and isinstance(result, sympy.Number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("v >= u", v - u), ("v > u", v - u), ("v <= u", u - v), ("v < u", u - v), ("v - u", v - u)],
)
def test_threshold_comparisons_become_functions_crossing_zero_from_below(text, expected):
    # The wrong sign would make neurons fire when the condition becomes false.
    assert parse(text, allow_comparison=True) == expected


def test_free_names_lists_symbol_names():
    # free_names feeds every "refers to" check; a missed name would let an unknown symbol through.
    assert free_names(parse("exp(v) * tau + 2")) == {"v", "tau"}
    assert free_names(parse("3")) == set()


# ---- what is rejected ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("__import__('os').system('x')", r"the call '__import__\('os'\)\.system\('x'\)' is not allowed"),
        ("v.real", r"attribute access 'v\.real' is not allowed"),
        ("v[0]", r"indexing 'v\[0\]' is not allowed"),
        ("lambda: 1", r"a lambda 'lambda: 1' is not allowed"),
        ("exp(x=1)", r"the call 'exp\(x=1\)' is not allowed; keyword arguments are not supported"),
        ("open('f')", r"the call 'open\('f'\)' is not allowed; 'open' is not one of the functions exp,"),
        ("'a'", r"a string ''a'' is not allowed"),
        ("v and 1", r"a boolean operator \('and'/'or'\) 'v and 1' is not allowed"),
        ("v ^ 2", r"the operator '\^' in 'v \^ 2' is not allowed; use '\*\*' for powers"),
        ("v % 2", r"the operator '%' in 'v % 2' is not allowed"),
        ("v // 2", r"the operator '//' in 'v // 2' is not allowed"),
        ("~v", r"the operator '~' in '~v' is not allowed"),
        ("not v", r"the operator 'not' in 'not v' is not allowed"),
        ("v if u else 1", r"a conditional expression 'v if u else 1' is not allowed"),
        ("[v]", r"a list '\[v\]' is not allowed"),
        ("True", r"the constant True 'True' is not allowed"),
        ("1j", r"a complex number '1j' is not allowed"),
        ("_secret + 1", r"the name '_secret' is not allowed; names starting with '_' are reserved"),
        ("exp + 1", r"the function name 'exp' is not allowed; call it, as in 'exp\(x\)'"),
        ("pow(v)", r"the call 'pow\(v\)' is not allowed; pow takes 2 argument\(s\), got 1"),
        ("exp(v, u)", r"exp takes 1 argument\(s\), got 2"),
        ("max(v)", r"max takes at least 2 argument\(s\), got 1"),
        ("exp(*v)", r"a starred argument '\*v' is not allowed"),
        ("v > 1", r"a comparison 'v > 1' is not allowed; comparisons are only allowed in thresholds"),
    ],
)
def test_rejected_construct_names_where_text_and_construct(text, match):
    # Accepting any of these would evaluate or misread Python; the message must say what and where.
    with pytest.raises(ModelError, match=match) as info:
        parse(text)
    assert str(info.value).startswith(f"cannot parse {WHERE}, '{text}': ")


def test_code_in_an_expression_is_never_run(monkeypatch):
    # If the parser evaluated Python, this call would reach os.system.
    def forbidden(*args):
        raise AssertionError("user text was executed")

    monkeypatch.setattr(os, "system", forbidden)
    with pytest.raises(ModelError, match="is not allowed"):
        parse("__import__('os').system('echo hacked')")


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("1 < v < 2", r"a chained comparison '1 < v < 2' is not allowed"),
        ("v == 1", r"the comparison 'v == 1' is not allowed; use one of >=, >, <=, <"),
        ("(v > 1) + 1", r"a comparison 'v > 1' is not allowed; a comparison may only be the whole"),
    ],
)
def test_only_one_top_level_ordering_comparison_is_accepted(text, match):
    # Chained, equality or nested comparisons have no crossing direction the engine could use.
    with pytest.raises(ModelError, match=match):
        parse(text, allow_comparison=True)


def test_syntax_error_shows_the_text_with_a_caret_under_the_column():
    # Without the caret a user has to guess where a long expression is broken.
    with pytest.raises(ModelError) as info:
        parse("(-v + Isyn) / / tau")
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"cannot parse {WHERE}, '(-v + Isyn) / / tau': invalid syntax")
    assert lines[1] == "    (-v + Isyn) / / tau"
    assert lines[2] == "    " + " " * 14 + "^"
    assert isinstance(info.value.__cause__, SyntaxError)


def test_syntax_error_at_end_puts_caret_after_the_text():
    # A truncated expression has its error past the last character; the caret must not vanish.
    with pytest.raises(ModelError) as info:
        parse("v >=", allow_comparison=True)
    assert str(info.value).splitlines()[1:] == ["    v >=", "        ^"]


@pytest.mark.parametrize("text", ["", "   ", "\n"])
def test_empty_text_is_an_error(text):
    # An empty ODE would otherwise have to be guessed as 0 or as a mistake.
    with pytest.raises(ModelError, match=r"the ODE of 'v' of this neuron is an empty string"):
        parse(text)


@pytest.mark.parametrize("text", ["1/0", "1e400", "9**9**9", "log(0)"])
def test_non_finite_constants_are_errors(text):
    # An infinite constant would turn every state it touches into inf or nan at run time.
    with pytest.raises(ModelError, match="infinite or undefined"):
        parse(text)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (None, "not NoneType"),
        (True, "not bool"),
        ([1.0], "not list"),
        (float("nan"), "is nan; it must be finite"),
    ],
)
def test_non_text_values_other_than_finite_numbers_are_errors(value, match):
    # None is how a model says "no reset"; the parser must not silently read it, nor a bool, as a number.
    with pytest.raises(ModelError, match=rf"the ODE of 'v' of this neuron .*{match}"):
        parse(value)


# ---- identifier rules ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("t", "is reserved for time"),
        ("dt", "is reserved for the time step"),
        ("Isyn", "is reserved for the summed synaptic input"),
        ("weight", "is reserved for the synaptic weight"),
        ("_v", "starts with '_'"),
        ("lambda_v", "starts with 'lambda_', which is kept for adjoint variables"),
        ("exp", "is the name of a function"),
        ("for", "is a Python keyword"),
        ("1v", "is not a valid name"),
        ("v-1", "is not a valid name"),
        ("vé", "is not a valid name"),
    ],
)
def test_invalid_names_are_refused_with_the_name_quoted(name, match):
    # A reserved or unparseable name would collide with the engine's own symbols or never be found.
    with pytest.raises(ModelError, match=rf"^the variable name '{name}' of this neuron {match}"):
        check_variable_name(name, "neuron")
    with pytest.raises(ModelError, match=rf"^the parameter name '{name}' of this synapse {match}"):
        check_parameter_name(name, "synapse")


def test_reserved_names_are_exactly_the_documented_ones():
    # The engine relies on this set to name its own inputs; the adjoint derivation adds its own symbols.
    assert RESERVED_NAMES == {"t", "dt", "Isyn", "weight", "threshold_rate", "dloss_dspike_time", "target_shift_sum"}


def test_non_string_names_are_refused():
    # A number as a key of vars would otherwise reach sympy.Symbol and fail obscurely.
    with pytest.raises(ModelError, match=r"the variable name 3 of this neuron is not a string \(int\)"):
        check_variable_name(3, "neuron")


@pytest.mark.parametrize("name", ["v", "v_th", "tau_mem", "E_rev", "beta", "x2", "lambda1"])
def test_ordinary_names_are_accepted(name):
    # Over-strict rules would reject ordinary model names.
    check_variable_name(name, "neuron")
    check_parameter_name(name, "neuron")
