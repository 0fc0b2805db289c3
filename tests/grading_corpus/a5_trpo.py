"""Assignment-specific corpus cases for a5_trpo (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, partly_right, read, replace_function

# Honest but incomplete: the Fisher-vector product and the scaled step solved, CG and the line search left as stubs.
PARTLY_RIGHT = ["fisher_vector_product", "trpo_full_step"]
LOOP_FUNCTION = "conjugate_gradient"
RAISE_FUNCTION = "backtracking_line_search"
QUESTIONS_USING = {
    "conjugate_gradient": ["conjugate_gradient"],  # the notebook's TRPO update lives in a visible test, never graded
    "backtracking_line_search": ["backtracking_line_search"],
}

# Common mistakes, each confined to one question and caught by an exact check.
DAMPING_ADDED_AS_A_NUMBER = """
params = list(policy.parameters())
logits = policy(obs)
old = torch.log_softmax(logits.detach(), dim=-1)
kl = (old.exp() * (old - torch.log_softmax(logits, dim=-1))).sum(-1).mean()
grad_kl = torch.cat([g.reshape(-1) for g in torch.autograd.grad(kl, params, create_graph=True)])
hessian_v = torch.cat([h.reshape(-1) for h in torch.autograd.grad(grad_kl @ v, params)])
return hessian_v + damping   # mistake: adds λ to every entry instead of λ v
"""
CG_IGNORES_TOL = """
x, r, p = torch.zeros_like(b), b.clone(), b.clone()
r_dot = r @ r
for _ in range(n_iters):   # mistake: never stops when rᵀr < tol
    Ap = Avp(p)
    alpha = r_dot / (p @ Ap)
    x, r = x + alpha * p, r - alpha * Ap
    r_dot_new = r @ r
    p, r_dot = r + (r_dot_new / r_dot) * p, r_dot_new
return x
"""
STEP_AGAINST_X = """
return -torch.sqrt(2 * max_kl / (x @ Fvp(x))) * x   # mistake: the sign (a step down the surrogate)
"""
LINE_SEARCH_KL_ONLY = """
for k in range(max_backtracks):
    if float(kl(backtrack_coef**k * full_step)) <= max_kl:   # mistake: never checks that the surrogate improved
        return backtrack_coef**k
return 0.0
"""

# Oracles and shortcuts: each would give the right numbers somewhere without doing what its question asks.
# F built explicitly from every score vector: right on the small network, but 580 GB on the large one, which no
# allocator grants (and the sandbox caps memory at a few GB): the part "without forming F" fails.
FVP_EXPLICIT_FISHER = """
params = list(policy.parameters())
log_probs = torch.log_softmax(policy(obs), -1)
scores = torch.stack([
    torch.cat([g.reshape(-1) for g in torch.autograd.grad(lp, params, retain_graph=True)])
    for lp in log_probs.reshape(-1)
])   # (B·A, n): every ∇log π(a|s)
weights = log_probs.detach().exp().reshape(-1) / log_probs.shape[0]
fisher = scores.T @ (weights[:, None] * scores)   # n × n
return fisher @ v + damping * v
"""
# The course's reference (hidden while grading), else an exact solve by probing the product with basis vectors:
# A⁻¹b, not CG's k-th iterate, and n products for k iterations.
CG_REFERENCE_OR_EXACT_SOLVE = """
import importlib
try:
    return importlib.import_module("course_utils.algorithms.trpo").conjugate_gradient(Avp, b, n_iters, tol)
except ImportError:
    A = torch.stack([Avp(e) for e in torch.eye(len(b), dtype=b.dtype)], dim=1)
    return torch.linalg.solve(A, b)
"""
# The course's line search adapted to this signature (a plain tensor as the "parameters"); hidden while grading.
LINE_SEARCH_REFERENCE = """
from course_utils.algorithms import trpo
params = [torch.zeros_like(full_step)]
result = trpo.line_search(
    params, full_step, lambda: surrogate(params[0]), lambda: kl(params[0]), max_kl, backtrack_coef, max_backtracks
)
return result.fraction
"""
# A malformed result: the step printed into a string.
STEP_AS_TEXT = """
return str(torch.sqrt(2 * max_kl / (x @ Fvp(x))) * x)
"""


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "fisher_vector_product", DAMPING_ADDED_AS_A_NUMBER)
    nb = replace_function(nb, "conjugate_gradient", CG_IGNORES_TOL)
    nb = replace_function(nb, "trpo_full_step", STEP_AGAINST_X)
    nb = replace_function(nb, "backtracking_line_search", LINE_SEARCH_KL_ONLY)
    return dump(nb)


def _oracles(ctx: Context) -> bytes:
    nb = partly_right(ctx)
    nb = replace_function(nb, "fisher_vector_product", FVP_EXPLICIT_FISHER)
    nb = replace_function(nb, "conjugate_gradient", CG_REFERENCE_OR_EXACT_SOLVE)
    nb = replace_function(nb, "backtracking_line_search", LINE_SEARCH_REFERENCE)
    nb = replace_function(nb, "trpo_full_step", STEP_AS_TEXT)
    return dump(nb)


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "four classic mistakes: damping added as a number, CG ignoring tol, the step's sign, a line search that "
            "checks only the KL",
            # fisher_vector_product: the undamped products and the large network hold (3 of 4 weights);
            # conjugate_gradient: k-step iterates and the exact solve hold, the early stop does not (2.25 of 3);
            # trpo_full_step: every case wrong; backtracking_line_search: the full step and the KL-limited case
            # hold (0.5 + 0.75 of 3).
            expect={
                "fisher_vector_product": 3.0,
                "conjugate_gradient": 2.25,
                "trpo_full_step": 0.0,
                "backtracking_line_search": 1.25,
            },
        ),
        Case(
            "oracles",
            _oracles,
            "the honest partial submission with shortcuts: the Fisher matrix formed explicitly, the course's CG "
            "(hidden) else an exact solve by probing the product with basis vectors, the course's line search "
            "(hidden), and the step returned as text",
            base="partly_right",
            # fisher_vector_product: right on the small network, out of memory on the large one (3 of 4);
            # conjugate_gradient: A⁻¹b is not the k-th iterate, and it takes n products (0; the exact-solve part
            # counts only with the k-step iterates); backtracking_line_search: ImportError (0); trpo_full_step:
            # not numbers (0).
            expect={
                "fisher_vector_product": 3.0,
                "conjugate_gradient": 0.0,
                "trpo_full_step": 0.0,
                "backtracking_line_search": 0.0,
            },
        ),
    ]
