"""Hidden checks for assignment 5, "Small steps: the natural gradient and TRPO's step" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's process.

Every answer of this assignment is deterministic, so every check is exact (float64,
relative tolerance 1e-6) against a value the grader computes another way:

- the Fisher-vector product against the Fisher matrix built explicitly (Σ_a π ∇log π ∇log πᵀ,
  one backward pass per state and action) on a small network the grader draws, and on a network of
  about 270,000 parameters, where F (580 GB) cannot be formed on any machine, let alone in the sandbox:
  there against the course's double-backprop reference. Building F explicitly is not what the question
  asks, and loses that part;
- conjugate gradient against the k-step Krylov minimiser (the exact k-th CG iterate, computed by an
  orthonormal Krylov basis), never against A⁻¹b alone: a solver that probes the product with basis
  vectors, or reads the matrix out of the product's closure and solves exactly, returns A⁻¹b, which is
  not the k-th iterate; the driver also counts the products (at most n_iters + 1) and refuses a matrix
  passed in place of a vector. Solving exactly with enough iterations counts only with the k-step iterates;
- the scaled step against sqrt(2δ / xᵀFx)·x;
- the line search against the known answer of surrogate and KL functions the grader builds along the
  step (first step already fine, KL-limited, improvement-limited, both, and two "no acceptable step"
  cases: a direction that never improves, and one whose first acceptable fraction is one shrink past
  the allowed tries); returning "no step" counts only when the other cases are right.

The course's reference (``course_utils.algorithms.trpo``) serves the grader here; the notebook may not
call it, and the sandbox hides ``course_utils.algorithms`` (``forbidden``). Messages name the property
that failed, never an expected number.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from course_grader.checks import Rubric, Verdict
from course_grader.schema import Array, Call, Fields, ListOf, Number
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.algorithms.trpo import make_fisher_vector_product, mean_kl

DRIVERS = load_drivers(__file__)

RTOL = 1e-6


def _r(x, digits: int = 6) -> list:
    return np.round(np.asarray(x, dtype=np.float64), digits).tolist()


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def _close(got: np.ndarray, expected: np.ndarray, rtol: float = RTOL) -> bool:
    """Relative agreement of two vectors in norm (a tolerance float64 arithmetic meets by orders of magnitude)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    return bool(np.linalg.norm(got - expected) <= rtol * np.linalg.norm(expected) + 1e-12)


def _spd(rng: np.random.Generator, n: int, low: float = 0.1, high: float = 10.0) -> np.ndarray:
    """A symmetric positive-definite n × n matrix with eigenvalues spread log-uniformly over [low, high]."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    eigenvalues = np.exp(rng.uniform(math.log(low), math.log(high), n))
    eigenvalues[:2] = low, high  # the full spread, so that no few iterations solve it
    a = (q * eigenvalues) @ q.T
    return np.round((a + a.T) / 2, 8)


# ----------------------------------------------------------------------------- 1. fisher_vector_product

LARGE_LAYERS = [8, 512, 512, 4]  # 269,316 parameters: F in float64 would take 580 GB, more than any RAM
LARGE_BATCH = 32


def make_fvp_inputs(rng):
    layers = [int(rng.integers(2, 5)), int(rng.integers(3, 7)), int(rng.integers(2, 5))]
    weights = [
        [_r(rng.normal(0, 1.2, (n_out, n_in))), _r(rng.normal(0, 0.5, n_out))]
        for n_in, n_out in zip(layers[:-1], layers[1:], strict=True)
    ]
    n_params = sum(n_out * (n_in + 1) for n_in, n_out in zip(layers[:-1], layers[1:], strict=True))
    v = [_r(rng.normal(0, 1, n_params)) for _ in range(3)]
    damping = float(np.round(rng.uniform(0.05, 0.5), 4))
    return {
        "layers": layers,
        "weights": weights,
        "obs": _r(rng.normal(0, 1, (int(rng.integers(5, 9)), layers[0]))),
        # F v twice, then (F + λI) v, and the first vector again with damping: the difference is exactly λv
        "calls": [
            {"v": v[0], "damping": 0.0},
            {"v": v[1], "damping": 0.0},
            {"v": v[2], "damping": damping},
            {"v": v[0], "damping": damping},
        ],
        "large": {"layers": LARGE_LAYERS, "seed": _seed(rng), "batch": LARGE_BATCH, "damping": 0.0},
    }


def FVP_RESULT(inputs):  # noqa: N802 - a schema
    n_small = len(inputs["calls"][0]["v"])
    layers = inputs["large"]["layers"]
    n_large = sum(n_out * (n_in + 1) for n_in, n_out in zip(layers[:-1], layers[1:], strict=True))
    return Fields({"small": ListOf(Call(Array((n_small,))), len(inputs["calls"])), "large": Call(Array((n_large,)))})


def explicit_fisher(policy: torch.nn.Module, obs: torch.Tensor) -> np.ndarray:
    """F = (1/B) Σ_b Σ_a π(a|s_b) ∇log π(a|s_b) ∇log π(a|s_b)ᵀ, one backward pass per state and action."""
    params = list(policy.parameters())
    log_probs = torch.log_softmax(policy(obs), -1)
    B, A = log_probs.shape
    fisher = torch.zeros(sum(p.numel() for p in params), sum(p.numel() for p in params), dtype=torch.float64)
    for b in range(B):
        for a in range(A):
            grads = torch.autograd.grad(log_probs[b, a], params, retain_graph=True)
            score = torch.cat([g.reshape(-1) for g in grads])
            fisher += log_probs[b, a].detach().exp() * torch.outer(score, score)
    return (fisher / B).numpy()


def reference_fvp(policy: torch.nn.Module, obs: torch.Tensor, v: torch.Tensor, damping: float) -> np.ndarray:
    """(F + λI) v by the course's double backprop (the Hessian of KL̄ at θ_old)."""
    logits = policy(obs)
    product = make_fisher_vector_product(mean_kl(logits.detach(), logits), list(policy.parameters()), damping)
    return product(v).detach().numpy()


def check_fvp(inputs, result) -> Verdict:
    rubric = Rubric()
    policy = DRIVERS.build_policy(inputs["layers"], weights=inputs["weights"])
    obs = DRIVERS.tensor(inputs["obs"])
    fisher = explicit_fisher(policy, obs)
    expected = [fisher @ np.array(c["v"]) + c["damping"] * np.array(c["v"]) for c in inputs["calls"]]
    # the reference agrees with the explicit matrix (a check of the checker, on every run)
    assert _close(
        reference_fvp(policy, obs, DRIVERS.tensor(inputs["calls"][2]["v"]), inputs["calls"][2]["damping"]),
        expected[2],
        1e-9,
    )
    outcomes = result["small"]
    ok = [o.ok and _close(o.value, e) for o, e in zip(outcomes, expected, strict=True)]
    rubric.details["small"] = {"expected": [e.tolist() for e in expected], "agree": ok}
    undamped, damped = [0, 1], [2, 3]
    failure = next((o.failure for o in outcomes if not o.ok), None)

    def message(indices) -> str:
        failed = [i for i in indices if not ok[i]]
        if any(not outcomes[i].ok for i in failed):
            return f"fisher_vector_product {failure}"
        return f"differs from the exact product for {len(failed)} of {len(indices)} vectors"

    rubric.part(
        "F v equals the exact Fisher matrix (mean over the states, exact over the actions) times v, on a small "
        "network, observations and vectors the grader draws (damping 0)",
        2.0,
        all(ok[i] for i in undamped),
        message(undamped),
    )
    rubric.part(
        "with damping λ > 0: (F + λI) v",
        1.0,
        all(ok[i] for i in damped) and all(ok[i] for i in undamped),
        message(damped),
    )
    large = result["large"]
    policy, obs, v = DRIVERS.large_case(inputs)
    expected_large = reference_fvp(policy, obs, v, inputs["large"]["damping"])
    rubric.part(
        f"on a network with {len(expected_large):,} parameters, whose F would need hundreds of GB: the same product, "
        "computed without forming F",
        1.0,
        large.ok and _close(large.value, expected_large),
        "differs from the exact product"
        if large.ok
        else f"fisher_vector_product {large.failure}"
        + (" (F itself does not fit in memory here: compute F v without forming F)" if ok[0] and ok[1] else ""),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- 2. conjugate_gradient


def krylov_minimiser(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """The minimiser of ½xᵀAx − bᵀx over span{b, Ab, ..., A^{k−1}b}: CG's k-th iterate in exact arithmetic.

    The basis is built by Arnoldi with full re-orthogonalisation (stable for the small k used here).
    """
    basis = [b / np.linalg.norm(b)]
    for _ in range(k - 1):
        w = a @ basis[-1]
        for _ in range(2):  # twice is enough (Kahan)
            for q in basis:
                w = w - (q @ w) * q
        basis.append(w / np.linalg.norm(w))
    q = np.stack(basis, axis=1)
    return q @ np.linalg.solve(q.T @ a @ q, q.T @ b)


def stopping_iteration(a: np.ndarray, b: np.ndarray, n_iters: int, tol: float) -> int:
    """The iteration at which exact CG stops: the first k with rₖᵀrₖ < tol, at most n_iters (n_iters > n: n)."""
    for k in range(min(n_iters, len(b))):
        r = b - a @ krylov_minimiser(a, b, k) if k else b
        if r @ r < tol:
            return k
    return min(n_iters, len(b))


def make_cg_inputs(rng):
    cases = []
    for k in (3, 5):  # k iterations on n ≥ 12: the k-th iterate is far from A⁻¹b
        n = int(rng.integers(12, 21))
        cases.append({"A": _spd(rng, n).tolist(), "b": _r(rng.normal(0, 1, n)), "n_iters": k, "tol": 1e-20})
    n = int(rng.integers(8, 13))  # enough iterations: the exact solution
    cases.append({"A": _spd(rng, n, 0.3, 3.0).tolist(), "b": _r(rng.normal(0, 1, n)), "n_iters": 4 * n, "tol": 1e-24})
    while True:  # a tolerance that stops CG after m iterations, with a margin of a factor 3 on both sides
        n = int(rng.integers(12, 21))
        a, b = _spd(rng, n), np.array(_r(rng.normal(0, 1, n)))
        residuals = [float(r @ r) for r in (b - a @ krylov_minimiser(a, b, j) if j else b for j in range(7))]
        m = int(rng.integers(2, 6))
        above, below = min(residuals[:m]), residuals[m]
        if above > 9 * below:
            tol = float(math.sqrt(above * below))
            cases.append({"A": a.tolist(), "b": b.tolist(), "n_iters": n, "tol": tol})
            return {"cases": cases}


def CG_RESULT(inputs):  # noqa: N802
    return ListOf(Fields({"x": Call(Array((None,))), "products": Number()}), len(inputs["cases"]))


def check_cg(inputs, result) -> Verdict:
    rubric = Rubric()
    ok, notes = [], []
    for case, got in zip(inputs["cases"], result, strict=True):
        a, b = np.array(case["A"]), np.array(case["b"])
        k = stopping_iteration(a, b, case["n_iters"], case["tol"])
        expected = np.linalg.solve(a, b) if k >= len(b) else krylov_minimiser(a, b, k)
        x = got["x"]
        if not x.ok:
            note = f"conjugate_gradient {x.failure}"
        elif x.value.shape != b.shape:
            note = "returned a vector of another length than b"
        elif got["products"] > case["n_iters"] + 1:
            note = "used more matrix-vector products than iterations (+1)"
        elif not _close(x.value, expected):
            note = "is not the conjugate-gradient iterate"
        else:
            note = ""
        ok.append(not note)
        notes.append(note)
    rubric.details["agree"] = ok
    rubric.part(
        "after k iterations, x is CG's k-th iterate (the minimiser of ½xᵀAx − bᵀx over the Krylov space of b), "
        "with at most k + 1 products, on SPD matrices the grader draws",
        1.5,
        ok[0] and ok[1],
        "; ".join(dict.fromkeys(n for n, good in zip(notes[:2], ok[:2], strict=True) if not good)),
    )
    rubric.part(
        "with enough iterations, the solution of A x = b (counted only with the k-step iterates right: an exact "
        "solver is not conjugate gradient)",
        0.75,
        ok[2] and ok[0] and ok[1],
        notes[2] if not ok[2] else "the k-step iterates are not CG's",
    )
    rubric.part(
        "stops at the first iteration whose residual rᵀr is below tol",
        0.75,
        ok[3],
        notes[3] if notes[3] != "is not the conjugate-gradient iterate" else "did not stop where rᵀr < tol",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- 3. trpo_full_step


def make_step_inputs(rng):
    cases = []
    for scale in (1.0, 1.0, 1000.0):  # the last: a long x, to which the step must not be proportional
        n = int(rng.integers(5, 11))
        cases.append(
            {
                "F": _spd(rng, n, 0.05, 5.0).tolist(),
                "x": _r(scale * rng.normal(0, 1, n)),
                "max_kl": float(np.round(rng.uniform(0.002, 0.05), 5)),
            }
        )
    return {"cases": cases}


def STEP_RESULT(inputs):  # noqa: N802
    return ListOf(Call(Array((None,))), len(inputs["cases"]))


def check_step(inputs, result) -> Verdict:
    rubric = Rubric()
    wrong, failure = 0, None
    for case, got in zip(inputs["cases"], result, strict=True):
        F, x, delta = np.array(case["F"]), np.array(case["x"]), case["max_kl"]
        expected = math.sqrt(2 * delta / (x @ F @ x)) * x
        if not got.ok:
            wrong, failure = wrong + 1, got.failure
        elif got.value.shape != x.shape or not _close(got.value, expected):
            wrong += 1
    rubric.part(
        "Δθ = sqrt(2δ / xᵀFx)·x: along x, with ½ΔθᵀFΔθ = δ, for the grader's F, x and δ (also for a long x)",
        1.0,
        wrong == 0,
        f"trpo_full_step {failure}" if failure else f"wrong in {wrong} of {len(result)} cases",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- 4. backtracking_line_search

LINE_KINDS = ["full", "kl", "improvement", "kl_then_improvement", "improvement_then_kl", "never_improves", "too_far"]


def _line_case(rng, kind: str) -> dict:
    """Surrogate L0 + a t − b t² and KL̄ κ t² along the step (t: the fraction of the full step).

    The surrogate improves for 0 < t < a/b and the KL fits for t ≤ sqrt(δ/κ); each limit is placed half a
    shrink between two tried fractions (a factor sqrt(c) of margin), or beyond the full step (× 1.5–3).
    """
    coef = float(rng.choice([0.5, 0.6, 0.7, 0.8]))
    tries = int(rng.integers(6, 11))
    delta = float(np.round(rng.uniform(0.005, 0.05), 5))

    def between(m: int) -> float:  # a limit accepting c^m but not c^(m−1)
        return coef ** (m - 0.5)

    def beyond() -> float:
        return float(rng.uniform(1.5, 3.0))

    m1, m2 = sorted(int(x) for x in rng.choice(np.arange(1, tries), 2, replace=False))
    t_kl, t_improve, a_sign = {
        "full": (beyond(), beyond(), 1),
        "kl": (between(m1), beyond(), 1),
        "improvement": (beyond(), between(m1), 1),
        "kl_then_improvement": (between(m1), between(m2), 1),  # the KL fits first, the surrogate improves later
        "improvement_then_kl": (between(m2), between(m1), 1),
        "never_improves": (beyond(), beyond(), -1),
        "too_far": (between(tries), beyond(), 1),  # the first acceptable fraction would be c^tries: not tried
    }[kind]
    a = float(rng.uniform(0.5, 2.0))
    n = int(rng.integers(4, 9))
    return {
        "full_step": _r(rng.normal(0, 0.3, n)),
        "L0": float(np.round(rng.normal(0, 1), 6)),
        "a": a_sign * a,
        "b": a / t_improve,
        "kappa": delta / t_kl**2,
        "max_kl": delta,
        "coef": coef,
        "max_backtracks": tries,
    }


def make_line_search_inputs(rng):
    return {"cases": [_line_case(rng, kind) for kind in LINE_KINDS], "kinds": LINE_KINDS}  # kinds: check only


def LINE_SEARCH_RESULT(inputs):  # noqa: N802
    return ListOf(
        Fields({"fraction": Call(Number()), "surrogate_calls": Number(), "kl_calls": Number()}), len(inputs["cases"])
    )


def expected_fraction(case: dict) -> float:
    """The first c^k, k < max_backtracks, with KL̄ ≤ δ and an improved surrogate; 0 if none (NumPy, the same
    functions as the driver's along the step)."""
    for k in range(case["max_backtracks"]):
        t = case["coef"] ** k
        if case["kappa"] * t**2 <= case["max_kl"] and case["a"] * t - case["b"] * t**2 > 0:
            return t
    return 0.0


def check_line_search(inputs, result) -> Verdict:
    rubric = Rubric()
    ok, notes = {}, {}
    for kind, case, got in zip(inputs["kinds"], inputs["cases"], result, strict=True):
        fraction = got["fraction"]
        expected = expected_fraction(case)
        rubric.details[kind] = {
            "expected": expected,
            "got": fraction.value if fraction.ok else fraction.failure,
            # for the instructor only: evaluating L(θ_old) again in every iteration is wasteful, not wrong
            "evaluations": {"surrogate": got["surrogate_calls"], "kl": got["kl_calls"]},
        }
        if not fraction.ok:
            ok[kind], notes[kind] = False, f"backtracking_line_search {fraction.failure}"
        else:
            ok[kind] = bool(abs(float(fraction.value) - expected) <= 1e-9 * max(expected, 1e-300))
            notes[kind] = "returned another fraction than the first acceptable one"
    both = ["kl_then_improvement", "improvement_then_kl"]
    others = all(ok[k] for k in ("full", "kl", "improvement", *both))
    shrinks = ok["kl"] or ok["improvement"]
    rubric.part(
        "the full step when it already improves the surrogate with KL̄ ≤ δ (counted only with a step that shrinks "
        "where it must: returning 1 always is not a line search)",
        0.5,
        ok["full"] and shrinks,
        notes["full"] if not ok["full"] else "it does not shrink the step where the full step does not qualify",
    )
    parts = [
        ("shrinks by the given factor until the exact KL̄ ≤ δ", 0.75, ["kl"]),
        ("shrinks until the surrogate improves", 0.75, ["improvement"]),
        ("both conditions at once: the first fraction meeting both, whichever holds last", 0.5, both),
    ]
    for description, weight, kinds in parts:
        rubric.part(description, weight, all(ok[k] for k in kinds), next((notes[k] for k in kinds if not ok[k]), ""))
    none_ok = ok["never_improves"] and ok["too_far"]
    rubric.part(
        "0 when no tried fraction qualifies (a direction that never improves; the limit one shrink beyond the "
        "allowed tries) — counted only with the cases above right",
        0.5,
        none_ok and others,
        next((notes[k] for k in ("never_improves", "too_far") if not ok[k]), "the cases above are not right"),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a5_trpo.ipynb",
    cell_timeout=120,
    cell_budget=60,
    forbidden=("course_utils.algorithms",),  # the notebook's rules: the course's TRPO is not an answer
    questions=[
        Question(
            "fisher_vector_product",
            DRIVERS.fisher_vector_product,
            make_fvp_inputs,
            FVP_RESULT,
            check_fvp,
            timeout=30,
            title="1 fisher_vector_product",
        ),
        Question(
            "conjugate_gradient",
            DRIVERS.conjugate_gradient,
            make_cg_inputs,
            CG_RESULT,
            check_cg,
            timeout=20,
            title="2 conjugate_gradient",
        ),
        Question(
            "trpo_full_step",
            DRIVERS.trpo_full_step,
            make_step_inputs,
            STEP_RESULT,
            check_step,
            timeout=20,
            title="3 trpo_full_step",
        ),
        Question(
            "backtracking_line_search",
            DRIVERS.backtracking_line_search,
            make_line_search_inputs,
            LINE_SEARCH_RESULT,
            check_line_search,
            timeout=20,
            check_only=("kinds",),
            title="4 backtracking_line_search",
        ),
    ],
)
