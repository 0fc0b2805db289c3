"""Estimators checked against exact gradients: enumeration for discrete z, closed forms for Gaussian z.

Each Monte Carlo check compares an average of independent batch estimates with the
exact value, allowing Z_MAX standard errors (of that average) per coordinate.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course_utils.estimators import (
    gaussian_kl_standard_normal,
    gaussian_rsample,
    gumbel_max_sample,
    gumbel_noise,
    gumbel_softmax_sample,
    score_function_surrogate,
    straight_through,
)

Z_MAX = 4.5  # standard errors; with the fixed seeds the tests are deterministic

THETA = torch.tensor([0.5, -0.3, 0.2, -1.0])  # logits of a 4-way categorical
COST = torch.tensor([1.0, 3.0, -2.0, 0.5])  # f(k), a table: no derivative exists


def exact_categorical_gradient(theta, cost_of_onehot):
    """∇_θ Σ_k softmax(θ)_k f(e_k), by enumerating the K outcomes."""
    theta = theta.clone().requires_grad_()
    J = (torch.softmax(theta, -1) * cost_of_onehot(torch.eye(len(theta)))).sum()
    return torch.autograd.grad(J, theta)[0]


def batch_estimates(one_batch, n_batches, seed=0):
    """Stack ``one_batch(generator)`` (a gradient vector) over independent batches: (n_batches, D)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.stack([one_batch(gen) for _ in range(n_batches)])


def assert_unbiased(estimates, exact, what):
    mean = estimates.mean(0)
    se = estimates.std(0) / math.sqrt(len(estimates))
    z = ((mean - exact) / se).abs()
    assert torch.all(z < Z_MAX), f"{what}: mean {mean} vs exact {exact}, z-scores {z}"


# --- score function ---------------------------------------------------------------------------------


def categorical_sf_batch(baseline, n=400, cost=COST):
    def one_batch(gen):
        theta = THETA.clone().requires_grad_()
        k = torch.multinomial(torch.softmax(THETA, -1), n, replacement=True, generator=gen)
        log_prob = torch.log_softmax(theta, -1)[k]
        surrogate = score_function_surrogate(log_prob, cost[k], baseline=baseline).mean()
        return torch.autograd.grad(surrogate, theta)[0]

    return one_batch


def test_score_function_is_unbiased_for_a_categorical():
    exact = exact_categorical_gradient(THETA, lambda onehot: onehot @ COST)
    estimates = batch_estimates(categorical_sf_batch(None), 200)
    assert_unbiased(estimates, exact, "score function")


def test_baseline_keeps_it_unbiased_and_a_good_one_cuts_variance():
    cost = COST + 10.0  # every outcome costs about 10: without a baseline, all samples push the same way
    exact = exact_categorical_gradient(THETA, lambda onehot: onehot @ cost)
    mean_cost = float((torch.softmax(THETA, -1) * cost).sum())
    plain = batch_estimates(categorical_sf_batch(None, cost=cost), 200, seed=1)
    good = batch_estimates(categorical_sf_batch(mean_cost, cost=cost), 200, seed=1)
    bad = batch_estimates(categorical_sf_batch(torch.tensor(-20.0), cost=cost), 200, seed=1)
    for name, est in (("b = E[f]", good), ("b = -20", bad)):
        assert_unbiased(est, exact, f"score function with baseline {name}")
    # Variance of a batch average; ratios of sample variances from 200 batches are good to ~±20 %.
    var = {name: est.var(0).sum().item() for name, est in (("plain", plain), ("good", good), ("bad", bad))}
    assert var["good"] < 0.5 * var["plain"] and var["plain"] < 0.5 * var["bad"], var


def test_score_function_surrogate_detaches_the_cost_and_baseline():
    theta = THETA.clone().requires_grad_()
    cost_table = COST.clone().requires_grad_()
    baseline = torch.tensor(0.3, requires_grad=True)
    k = torch.tensor([0, 2, 2, 3])
    log_prob = torch.log_softmax(theta, -1)[k]
    surrogate = score_function_surrogate(log_prob, cost_table[k], baseline)
    assert surrogate.shape == (4,)
    surrogate.sum().backward()
    assert cost_table.grad is None and baseline.grad is None, "⊥: no gradient may flow into the cost or baseline"
    expected = ((COST[k] - 0.3)[:, None] * (F.one_hot(k, 4) - torch.softmax(THETA, -1))).sum(0)
    assert torch.allclose(theta.grad, expected, atol=1e-6)


def test_score_function_surrogate_rejects_silent_broadcasting():
    log_prob = torch.zeros(5, 1, requires_grad=True)
    with pytest.raises(ValueError, match="sum log_prob over event dimensions"):
        score_function_surrogate(log_prob, torch.ones(5))
    with pytest.raises(ValueError, match="do not match"):
        score_function_surrogate(torch.zeros(5), torch.ones(4))
    with pytest.raises(ValueError, match="floating-point"):
        score_function_surrogate(torch.zeros(5, dtype=torch.long), torch.ones(5))


# --- reparameterization -----------------------------------------------------------------------------

MU, SIGMA = 1.5, 0.7


def gaussian_batch(estimator, n=400):
    """One batch estimate of ∇_(μ, log σ) E_{z∼N(μ, σ²)}[z²]."""

    def one_batch(gen):
        mu = torch.tensor(MU, requires_grad=True)
        log_sigma = torch.tensor(math.log(SIGMA), requires_grad=True)
        if estimator == "reparam":
            z = gaussian_rsample(mu.expand(n), log_sigma.expand(n), generator=gen)
            loss = (z**2).mean()
        else:
            with torch.no_grad():
                z = gaussian_rsample(mu.expand(n), log_sigma.expand(n), generator=gen)
            log_prob = torch.distributions.Normal(mu, log_sigma.exp()).log_prob(z)
            loss = score_function_surrogate(log_prob, z**2).mean()
        return torch.stack(torch.autograd.grad(loss, (mu, log_sigma)))

    return one_batch


def test_reparameterized_and_score_function_gradients_are_unbiased_and_reparam_has_lower_variance():
    exact = torch.tensor([2 * MU, 2 * SIGMA**2])  # E[z²] = μ² + σ²: ∂/∂μ = 2μ, ∂/∂log σ = 2σ²
    reparam = batch_estimates(gaussian_batch("reparam"), 200)
    score = batch_estimates(gaussian_batch("score"), 200)
    assert_unbiased(reparam, exact, "reparameterization")
    assert_unbiased(score, exact, "score function")
    assert reparam.var(0).sum() < score.var(0).sum() / 5


def test_gaussian_rsample_distribution_and_generator():
    n = 100_000
    mu, log_sigma = torch.tensor([0.0, -2.0, 3.0]), torch.log(torch.tensor([1.0, 0.5, 2.0]))
    z = gaussian_rsample(mu.expand(n, 3), log_sigma, generator=torch.Generator().manual_seed(0))
    assert z.shape == (n, 3)
    sigma = log_sigma.exp()
    assert torch.all((z.mean(0) - mu).abs() < Z_MAX * sigma / math.sqrt(n))
    assert torch.all((z.std(0) - sigma).abs() < Z_MAX * sigma / math.sqrt(2 * n))
    again = gaussian_rsample(mu.expand(n, 3), log_sigma, generator=torch.Generator().manual_seed(0))
    assert torch.equal(z, again)
    with pytest.raises(ValueError, match="do not broadcast"):
        gaussian_rsample(torch.zeros(3), torch.zeros(2))


def test_pathwise_derivative_of_a_sample():
    mu = torch.tensor([0.3, -1.0], requires_grad=True)
    log_sigma = torch.tensor([0.1, -0.5], requires_grad=True)
    gen = torch.Generator().manual_seed(4)
    z = gaussian_rsample(mu, log_sigma, generator=gen)
    eps = torch.randn(2, generator=torch.Generator().manual_seed(4))
    z.sum().backward()
    assert torch.allclose(mu.grad, torch.ones(2))  # ∂z/∂μ = 1
    assert torch.allclose(log_sigma.grad, log_sigma.detach().exp() * eps)  # ∂z/∂log σ = σ ε


# --- KL ---------------------------------------------------------------------------------------------


def test_gaussian_kl_matches_monte_carlo_and_torch():
    mu = torch.tensor([[0.0, 0.0], [1.0, -2.0], [0.5, 0.3]])
    log_sigma = torch.tensor([[0.0, 0.0], [-1.0, 0.5], [0.2, -0.3]])
    kl = gaussian_kl_standard_normal(mu, log_sigma)
    assert kl.shape == (3,)
    assert kl[0] == 0.0
    q = torch.distributions.Normal(mu, log_sigma.exp())
    p = torch.distributions.Normal(0.0, 1.0)
    assert torch.allclose(kl, torch.distributions.kl_divergence(q, p).sum(-1), atol=1e-6)
    torch.manual_seed(0)
    z = q.sample((200_000,))
    terms = (q.log_prob(z) - p.log_prob(z)).sum(-1)  # (n, 3): log q(z) − log p(z)
    se = terms.std(0) / math.sqrt(len(terms))
    assert torch.all((terms.mean(0) - kl).abs()[1:] < Z_MAX * se[1:])
    with pytest.raises(ValueError, match="last"):
        gaussian_kl_standard_normal(torch.tensor(0.0), torch.tensor(0.0))


# --- Gumbel -----------------------------------------------------------------------------------------


def test_gumbel_noise_has_the_gumbel_cdf():
    g = gumbel_noise((200_000,), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(g).all()
    for x in (-1.0, 0.0, 1.0, 3.0):
        cdf = math.exp(-math.exp(-x))
        frac = (g <= x).float().mean().item()
        assert abs(frac - cdf) < Z_MAX * math.sqrt(cdf * (1 - cdf) / len(g)), (x, frac, cdf)
    assert abs(g.mean().item() - 0.5772156649) < Z_MAX * (math.pi / math.sqrt(6)) / math.sqrt(len(g))  # Euler γ


@pytest.mark.parametrize("shift", [0.0, 7.0])
def test_gumbel_max_frequencies_match_the_categorical(shift):
    probs = torch.tensor([0.1, 0.2, 0.3, 0.4])
    n = 40_000
    k = gumbel_max_sample((probs.log() + shift).expand(n, 4), generator=torch.Generator().manual_seed(1))
    assert k.shape == (n,) and k.dtype == torch.int64
    counts = torch.bincount(k, minlength=4).float()
    z = (counts - n * probs) / torch.sqrt(n * probs * (1 - probs))
    assert torch.all(z.abs() < Z_MAX), f"frequencies {counts / n} vs probabilities {probs}"


def test_gumbel_softmax_is_on_the_simplex_and_argmax_is_the_gumbel_max_sample():
    logits = torch.randn(500, 5, generator=torch.Generator().manual_seed(0))
    soft = gumbel_softmax_sample(logits, 0.7, generator=torch.Generator().manual_seed(3))
    hard = gumbel_max_sample(logits, generator=torch.Generator().manual_seed(3))
    assert soft.shape == (500, 5) and torch.all(soft >= 0)
    assert torch.allclose(soft.sum(-1), torch.ones(500))
    assert torch.equal(soft.argmax(-1), hard)


def test_gumbel_softmax_concentrates_as_the_temperature_falls():
    logits = torch.tensor([1.0, 0.0, -0.5]).expand(5000, 3)
    mean_max = [
        gumbel_softmax_sample(logits, tau, generator=torch.Generator().manual_seed(0)).max(-1).values.mean().item()
        for tau in (10.0, 1.0, 0.1, 0.01)
    ]
    assert mean_max == sorted(mean_max) and mean_max[-1] > 0.99 and mean_max[0] < 0.4, mean_max


def test_gumbel_softmax_bias_shrinks_as_tau_goes_to_zero():
    """E[∇_θ f(softmax((θ+g)/τ))] → ∇_θ Σ_k π_k f(e_k): the bias falls with τ, the variance rises."""
    c, d = torch.tensor([1.0, -2.0, 0.5, 3.0]), torch.tensor([0.3, 1.0, -1.0, 0.0])

    def f(z):  # nonlinear in z, so the relaxation's bias is not a mere rescaling
        return (z @ c) ** 2 + z @ d

    exact = exact_categorical_gradient(THETA, f)
    n = 20_000
    taus = [2.0, 0.5, 0.1, 0.02]  # the bias at 0.02 is too small to resolve from 0.1's with n samples
    bias, bias_se, variance = [], [], []
    for tau in taus:
        noise = gumbel_noise((n, 4), generator=torch.Generator().manual_seed(0))  # common random numbers
        per_sample = torch.func.vmap(
            torch.func.grad(lambda theta, g, tau=tau: f(torch.softmax((theta + g) / tau, -1))), in_dims=(None, 0)
        )(THETA, noise)  # (n, 4): one gradient per Gumbel sample
        reference = gumbel_softmax_sample(THETA.expand(n, 4), tau, generator=torch.Generator().manual_seed(0))
        assert torch.allclose(reference, torch.softmax((THETA + noise) / tau, -1))
        error = per_sample.mean(0) - exact
        bias.append(error.norm().item())
        bias_se.append((per_sample.var(0).sum() / n).sqrt().item())  # standard error of the error vector's norm
        variance.append(per_sample.var(0).sum().item())
    for i in range(len(taus) - 1):
        if i < len(taus) - 2:
            assert bias[i] - bias[i + 1] > 3 * math.hypot(bias_se[i], bias_se[i + 1]), (taus, bias, bias_se)
        assert variance[i] < variance[i + 1], (taus, variance)
    assert bias[-1] < 0.1 * exact.norm() + Z_MAX * bias_se[-1], "at τ = 0.02 the bias should be nearly gone"
    assert bias[0] > 0.5 * exact.norm(), "at τ = 2 the relaxation should be badly biased"


def test_straight_through_forward_is_one_hot_and_backward_is_the_soft_gradient():
    theta = THETA.clone().requires_grad_()
    w = torch.tensor([0.3, -1.0, 2.0, 0.5])
    soft = gumbel_softmax_sample(theta.expand(64, 4), 0.5, generator=torch.Generator().manual_seed(2))
    st = straight_through(soft)
    assert torch.equal(st, F.one_hot(soft.argmax(-1), 4).float())
    (st @ w).sum().backward()
    grad_st = theta.grad.clone()
    theta.grad = None
    soft_again = gumbel_softmax_sample(theta.expand(64, 4), 0.5, generator=torch.Generator().manual_seed(2))
    (soft_again @ w).sum().backward()
    assert torch.allclose(grad_st, theta.grad)


@pytest.mark.parametrize("tau", [0.0, -1.0, float("nan"), True])
def test_gumbel_softmax_rejects_bad_temperatures(tau):
    with pytest.raises(ValueError, match="temperature"):
        gumbel_softmax_sample(torch.zeros(3), tau)


def test_gumbel_rejects_bad_logits():
    with pytest.raises(ValueError, match="K >= 2"):
        gumbel_max_sample(torch.zeros(4, 1))
    with pytest.raises(ValueError, match="floating-point"):
        gumbel_softmax_sample(torch.zeros(4, 3, dtype=torch.long), 1.0)
