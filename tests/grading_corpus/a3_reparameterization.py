"""Assignment-specific corpus cases for a3_reparameterization (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, partly_right, read, replace_function

# Honest but incomplete: the Gaussian sample and its KL solved, everything else left as the stub.
PARTLY_RIGHT = ["gaussian_rsample", "gaussian_kl"]
LOOP_FUNCTION = "gaussian_kl"
RAISE_FUNCTION = "straight_through"
QUESTIONS_USING = {
    # elbo calls gaussian_kl, but it is a stub in PARTLY_RIGHT and graded with the reference KL anyway
    "gaussian_kl": ["gaussian_kl"],
    "straight_through": ["straight_through"],
}

# Common mistakes, each confined to one question and caught by a property check.
SIGMA_IS_LOG_SIGMA = """
return mu + log_sigma * eps   # mistake: multiplies the noise by log σ instead of σ = exp(log σ)
"""
KL_SIGN_ERROR = """
return (0.5 * (mu**2 + torch.exp(2 * log_sigma) - 1) + log_sigma).sum(-1)   # mistake: + log σ instead of − log σ
"""
NO_DETACH = """
hard = torch.nn.functional.one_hot(soft.argmax(dim=-1), num_classes=soft.shape[-1]).to(soft.dtype)
return (hard - soft) + soft   # mistake: no detach, so the gradient cancels to zero
"""
OWN_NOISE = """
u = torch.rand(logits.shape, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
return torch.softmax((logits - torch.log(-torch.log(u))) / tau, dim=-1)   # mistake: ignores the given g
"""

# Oracles and shortcuts: each passed a part of the old checks without doing what its question asks.
# The exact ELBO of the grader's linear-Gaussian model (W, b, η read from the closure of the public driver's
# log_likelihood) plus Gaussian noise of the estimator's exact variance: unbiased with the right variance, but an
# exact value with noise added, not an estimate (it passed "ELBO ≤ log p(x), = at the posterior": 1 of 3 points).
ELBO_EXACT_PLUS_NOISE = """
cells = dict(zip(log_likelihood.__code__.co_freevars, (c.cell_contents for c in log_likelihood.__closure__)))
W, b, eta = cells["W"], cells["b"], cells["eta"]
a = x - b - W @ mu
B = W * log_sigma.exp()
BtB = B.T @ B
kl = (0.5 * (mu**2 + (2 * log_sigma).exp() - 1) - log_sigma).sum(-1)
exact = -0.5 * (a @ a + torch.trace(BtB)) / eta - 0.5 * len(b) * math.log(2 * math.pi * eta) - kl
variance = (2 * torch.trace(BtB @ BtB) + 4 * ((B.T @ a) ** 2).sum()) / (4 * eta**2) / len(eps)
return exact + variance.sqrt() * torch.randn((), dtype=torch.float64)
"""
# Gaussian noise with the Gumbel's mean γ and variance π²/6, drawn with the generator (it passed the old mean,
# variance and argmax-frequency tests on about half of the grader's draws).
GUMBEL_MOMENTS_ONLY = """
return 0.5772156649015329 + math.pi / math.sqrt(6) * torch.randn(shape, generator=generator, dtype=torch.float64)
"""
# A hard one-hot for every τ: no relaxation, but one-hot "in the limit τ → 0" (it passed that part).
GUMBEL_HARD = """
return torch.nn.functional.one_hot((logits + g).argmax(-1), logits.shape[-1]).to(logits.dtype)
"""
# Straight-through that does nothing: the gradient is the soft sample's because the value is (it passed the
# backward part).
STRAIGHT_THROUGH_IDENTITY = """
return soft
"""
# The course's reference KL (forbidden; the sandbox hides course_utils.estimators), else a KL computed in NumPy:
# right values, but nothing for autograd (it passed the whole question). 1.5 of 2 points shows both closed.
KL_REFERENCE_OR_NUMPY = """
import importlib
try:
    return getattr(importlib.import_module("course_utils.estimators"), "gaussian_kl_standard_normal")(mu, log_sigma)
except ImportError:
    m, s = mu.detach().numpy(), log_sigma.detach().numpy()
    return torch.tensor((0.5 * (m**2 + np.exp(2 * s) - 1) - s).sum(-1))
"""


def _oracles(ctx: Context) -> bytes:
    nb = partly_right(ctx)
    nb = replace_function(nb, "elbo", ELBO_EXACT_PLUS_NOISE)
    nb = replace_function(nb, "sample_gumbel", GUMBEL_MOMENTS_ONLY)
    nb = replace_function(nb, "gumbel_softmax", GUMBEL_HARD)
    nb = replace_function(nb, "straight_through", STRAIGHT_THROUGH_IDENTITY)
    nb = replace_function(nb, "gaussian_kl", KL_REFERENCE_OR_NUMPY)
    return dump(nb)


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "gaussian_rsample", SIGMA_IS_LOG_SIGMA)
    nb = replace_function(nb, "gaussian_kl", KL_SIGN_ERROR)
    nb = replace_function(nb, "gumbel_softmax", OWN_NOISE)
    nb = replace_function(nb, "straight_through", NO_DETACH)
    return dump(nb)


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "four classic mistakes: σ confused with log σ, a sign error in the KL, Gumbel-softmax drawing its own "
            "noise instead of using the given g, straight-through without the detach",
            # gaussian_rsample: value, pathwise derivative and the estimator's mean (w.r.t. log σ) all fail;
            # gaussian_kl: closed form, gradient and Monte Carlo all fail; elbo is graded with the reference sample
            # and KL, so it keeps full marks; gumbel_softmax: only sample_gumbel's parts (distribution and
            # generator, 1.5 of 3 weights) hold; straight_through: the forward value is right, the gradient is zero.
            expect={
                "gaussian_rsample": 0.0,
                "gaussian_kl": 0.0,
                "elbo": "full",
                "gumbel_softmax": 1.5,
                "straight_through": 1.0,
            },
        ),
        Case(
            "oracles",
            _oracles,
            "the honest partial submission with oracles and shortcuts: the exact ELBO plus noise of the right "
            "variance, Gaussian noise with the Gumbel's mean and variance, a hard one-hot for every τ, "
            "straight-through returning soft unchanged, the course's reference KL (hidden), else a KL computed in NumPy",
            base="partly_right",
            # elbo: not the definition on the grader's noise, and its estimates fail the KS test against the
            # estimator's distribution; gumbel_softmax: the KS test against the Gumbel CDF fails, and the one-hot
            # limit counts only for relaxed samples; straight_through: the soft gradient counts only with the hard
            # value; gaussian_kl: the reference cannot be imported, the NumPy values are right (1 + 0.5 of 2
            # weights), the gradient is missing.
            expect={
                "gaussian_rsample": "full",
                "gaussian_kl": 1.5,
                "elbo": 0.0,
                "gumbel_softmax": 0.0,
                "straight_through": 0.0,
            },
        ),
    ]
