"""Assignment-specific corpus cases for a3_reparameterization (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, read, replace_function

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
            # gaussian_rsample: value, pathwise derivative and unbiasedness (w.r.t. log σ) all fail;
            # gaussian_kl: closed form and Monte Carlo both fail; elbo is graded with the reference sample and KL,
            # so it keeps full marks; gumbel_softmax: only sample_gumbel's part (1 of 3 weights) holds;
            # straight_through: the forward value is right, the gradient is zero.
            expect={
                "gaussian_rsample": 0.0,
                "gaussian_kl": 0.0,
                "elbo": "full",
                "gumbel_softmax": 1.0,
                "straight_through": 1.0,
            },
        ),
    ]
