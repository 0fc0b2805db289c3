"""Hidden checks for assignment 3, "Reparameterization and Gumbel-softmax" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_*_inputs`` draws fresh inputs here, the function of the same name in
``drivers.py`` (public, no expected values) calls the student's functions on
them inside the sandbox, ``*_RESULT`` fixes the shape of what it returns, and
``check_*`` tests properties of the parsed values here, in the grader's process.

Where a function is deterministic given its noise, the grader supplies the
noise (ε for the Gaussian, g for Gumbel-softmax) and checks the exact value and
the exact pathwise gradient: a submission that draws its own noise, or returns
something merely distributed right, cannot pass those parts. The estimators are
also graded as estimators, against distributions the grader knows exactly: the
pathwise gradient's mean and variance (closed forms), the ELBO estimate's mean
(the exact ELBO of a linear-Gaussian model), variance (closed form) and
distribution (two-sample KS test against the grader's own simulation, so that
"exact value plus calibrated noise" fails), and Gumbel noise by its exact CDF
(KS), moments, argmax frequencies and reproducibility from the given generator.
Statistical tests have a false-alarm probability of about 1e-6 each
(``course_grader.checks.ALPHA``, split over the tests of a part); where the
student's values equal the definition on the grader's noise, their distribution
is the estimator's by construction and no statistical test is needed. The
reference implementations in ``course_utils.estimators`` are used here; the
notebook may not call them, and the sandbox hides that module (``forbidden``).
A part that a degenerate answer would pass counts only together with the rest:
the one-hot limit of Gumbel-softmax only for relaxed samples, the soft gradient
of straight-through only with the hard value. Messages name the property that
failed, never the expected number.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from course_grader.checks import ALPHA, Rubric, Verdict, Wrong, mean_matches, variance_matches, z_threshold
from course_grader.schema import Array, Call, Fields, ListOf, Number, values
from course_grader.spec import Assignment, Question, load_drivers
from course_utils.estimators import gaussian_kl_standard_normal
from course_utils.estimators import straight_through as reference_straight_through

DRIVERS = load_drivers(__file__)

EULER_GAMMA = 0.5772156649015329


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=torch.float64)


def _r(x, digits: int = 4) -> list:
    return np.round(np.asarray(x, dtype=np.float64), digits).tolist()


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**62))


def _close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-6, atol: float = 1e-8) -> np.ndarray:
    return np.isclose(got, expected, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- A.1 gaussian_rsample

N_PATH = 2000


def make_rsample_inputs(rng):
    N, K = int(rng.integers(3, 7)), int(rng.integers(2, 5))
    # log σ in [-1.5, 1]: σ and log σ differ everywhere, so confusing them shows in every entry.
    return {
        "mu": _r(rng.normal(0, 1, (N, K))),
        "log_sigma": _r(rng.uniform(-1.5, 1.0, (N, K))),
        "eps": _r(rng.normal(0, 1, (N, K)), 6),
        "path_mu": _r(rng.normal(0, 1, K)),
        "path_log_sigma": _r(rng.uniform(-1.0, 0.7, K)),
        "c": _r(rng.normal(0, 1.5, K)),
        "path_eps": _r(rng.normal(0, 1, (N_PATH, K)), 6),
    }


def RSAMPLE_RESULT(inputs):  # noqa: N802 - a schema
    shape = np.shape(inputs["mu"])
    return Fields(
        {
            "value": Call(Array(shape)),
            "pathwise": Call(Array((2, len(inputs["path_eps"]), len(inputs["path_mu"])))),
        }
    )


DESCRIBE_PATHWISE = (
    "differentiable: the gradient of f(z) = ||z − c||² reaches μ and log σ and is the pathwise derivative"
)
DESCRIBE_PATHWISE_ESTIMATOR = (
    f"as an estimator over {N_PATH} noise draws, the gradient of ||z − c||² w.r.t. μ and log σ has the mean (the "
    "closed-form ∇E||z − c||²) and the variance of the pathwise estimator"
)


def pathwise_moments(m, s, c) -> tuple[np.ndarray, float]:
    """Mean and total variance of the per-sample gradient of ||μ + σε − c||² w.r.t. (μ, log σ), ε ~ N(0, I).

    ∇_μ = 2(μ − c + σε): mean 2(μ − c), variance 4σ². ∇_{log σ} = 2σ(μ − c)ε + 2σ²ε²: mean 2σ², variance
    4σ²(μ − c)² + 8σ⁴ (Var ε² = 2).
    """
    mean = np.concatenate([2 * (m - c), 2 * s**2])
    total_variance = float(np.sum(4 * s**2 + 4 * s**2 * (m - c) ** 2 + 8 * s**4))
    return mean, total_variance


@np.errstate(over="ignore", invalid="ignore")  # absurd values fail the tests, quietly
def check_rsample(inputs, result):
    rubric = Rubric()
    mu, log_sigma, eps = (np.array(inputs[k]) for k in ("mu", "log_sigma", "eps"))
    expected = mu + np.exp(log_sigma) * eps
    value = result["value"]
    rubric.details["value"] = {"expected": expected.tolist(), "failure": value.failure}
    bad = ~_close(value.value, expected, atol=1e-9) if value.ok else None
    rubric.part(
        "z = μ + exp(log σ) ⊙ ε on the grader's μ, log σ and noise ε",
        1.0,
        value.ok and not bad.any(),
        f"gaussian_rsample {value.failure}" if not value.ok else f"wrong in {int(bad.sum())} of {bad.size} entries",
    )

    m, s, c = np.array(inputs["path_mu"]), np.exp(np.array(inputs["path_log_sigma"])), np.array(inputs["c"])
    path_eps = np.array(inputs["path_eps"])
    pathwise = result["pathwise"]
    if not pathwise.ok:
        message = f"the gradient through gaussian_rsample {pathwise.failure}"
        rubric.part(DESCRIBE_PATHWISE, 1.0, False, message)
        rubric.part(DESCRIBE_PATHWISE_ESTIMATOR, 1.0, False, message)
        return rubric.verdict()
    grads = pathwise.value
    z = m + s * path_eps
    exact_mu, exact_ls = 2 * (z - c), 2 * (z - c) * s * path_eps  # d/dμ and d/dlog σ of ||μ + σε − c||²
    exact = bool(np.all(_close(grads[0], exact_mu)) and np.all(_close(grads[1], exact_ls)))
    rubric.part(
        DESCRIBE_PATHWISE,
        1.0,
        exact,
        "the gradients through your z are not those of μ + exp(log σ) ⊙ ε",
    )
    # E||z − c||² = ||μ − c||² + Σσ²: gradient 2(μ − c) w.r.t. μ and 2σ² w.r.t. log σ. Per-sample gradients equal
    # to the pathwise derivative on the grader's noise have the estimator's distribution by construction.
    mean, total_variance = pathwise_moments(m, s, c)
    samples = np.concatenate([grads[0], grads[1]], axis=1)
    rubric.details["pathwise"] = {"closed_form_gradient": mean.tolist(), "total_variance": total_variance}
    problems = []
    if not exact:
        test = mean_matches(samples, mean, alpha=ALPHA / 2)
        if not test.passed:
            problems.append(f"coordinate {test.worst_index} of its average is {test.worst_z:.1f} standard errors away")
        ok, measured, z_var = variance_matches(samples, mean, total_variance, alpha=ALPHA / 2)
        rubric.details["pathwise"]["measured_total_variance"] = measured
        if not ok:
            problems.append(
                f"its total variance is {measured / total_variance:.2f} times the pathwise estimator's "
                f"({z_var:.1f} standard errors away)"
            )
    rubric.part(
        DESCRIBE_PATHWISE_ESTIMATOR,
        1.0,
        not problems,
        "; ".join(problems) + " (a correct estimator stays within the threshold)",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.2 gaussian_kl

N_MC_KL = 20_000
N_KL_ROWS = 6


def make_kl_inputs(rng):
    K = int(rng.integers(2, 5))
    mu = rng.normal(0, 1, (N_KL_ROWS, K))
    log_sigma = rng.uniform(-1.5, 1.0, (N_KL_ROWS, K))
    mu[0], log_sigma[0] = 0.0, 0.0  # q = N(0, I): KL = 0
    log_sigma[1] = rng.uniform(0.5, 1.0, K)  # wide q: a sign error in log σ is large here
    log_sigma[2] = rng.uniform(-1.5, -0.8, K)  # narrow q
    return {"mu": _r(mu), "log_sigma": _r(log_sigma), "mc_seed": _seed(rng)}


def KL_RESULT(inputs):  # noqa: N802
    rows, K = np.shape(inputs["mu"])
    return Fields({"kl": Call(Array((rows,))), "gradient": Call(Array((2, rows, K)))})


def check_kl(inputs, result):
    rubric = Rubric()
    mu, log_sigma = np.array(inputs["mu"]), np.array(inputs["log_sigma"])
    closed = gaussian_kl_standard_normal(_t(mu), _t(log_sigma)).numpy()
    rubric.details["closed_form"] = closed.tolist()
    kl = result["kl"]
    bad = ~_close(kl.value, closed, atol=1e-9) if kl.ok else None
    rubric.part(
        "KL(N(μ, diag σ²) ‖ N(0, I)) equals its closed form on the grader's rows (0 for q = N(0, I))",
        1.0,
        kl.ok and not bad.any(),
        f"gaussian_kl {kl.failure}" if not kl.ok else f"wrong on {int(bad.sum())} of {len(bad)} rows",
    )
    gradient = result["gradient"]
    exact = np.stack([mu, np.exp(2 * log_sigma) - 1])  # ∂KL/∂μ = μ, ∂KL/∂log σ = σ² − 1
    rubric.part(
        "differentiable: its gradient w.r.t. μ and log σ is (μ, σ² − 1)",
        0.5,
        gradient.ok and bool(np.all(_close(gradient.value, exact))),
        f"the gradient of gaussian_kl {gradient.failure}"
        if not gradient.ok
        else "the gradient autograd gets through it is not that of the KL",
    )
    if not kl.ok:
        rubric.part("agrees with a Monte Carlo estimate of E_q[log q(z) − log p(z)]", 0.5, False, "no values")
        return rubric.verdict()
    # Monte Carlo: E_q[log q(z) − log p(z)] with the grader's own samples, one standard error per row.
    rng = np.random.default_rng(inputs["mc_seed"])
    eps = rng.normal(size=(N_MC_KL, *mu.shape))
    z = mu + np.exp(log_sigma) * eps
    log_ratio = (-0.5 * eps**2 - log_sigma + 0.5 * z**2).sum(-1)  # log q(z) − log N(z; 0, I); the 2π terms cancel
    mean, se = log_ratio.mean(0), log_ratio.std(0, ddof=1) / math.sqrt(N_MC_KL)
    gap = np.abs(kl.value - mean)
    with np.errstate(divide="ignore", invalid="ignore"):  # q = N(0, I): every sample's log-ratio is exactly 0
        z_scores = np.where(se > 0, gap / np.where(se > 0, se, 1.0), np.where(gap < 1e-9, 0.0, np.inf))
    threshold = z_threshold(len(mu))
    rubric.details["monte_carlo"] = {"mean": mean.tolist(), "se": se.tolist()}
    rubric.part(
        f"agrees with a Monte Carlo estimate of E_q[log q(z) − log p(z)] ({N_MC_KL} samples per row)",
        0.5,
        bool(np.all(z_scores <= threshold)),
        f"row {int(np.argmax(z_scores)) + 1} is {z_scores.max():.1f} standard errors away (allowed {threshold:.1f})",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.3 elbo

N_ELBO_SMALL = 5
# The estimator graded as one: R estimates of S draws each, for a q away from the posterior (S = 1: the estimate
# is a weighted chi-square, far from Gaussian) and for the exact posterior (S = 4: a sum in place of the mean
# shows). Measured: a "closed-form ELBO + Gaussian noise of the right variance" oracle fails the KS test (at
# ALPHA / 6) with 600 estimates on 1000 of 1000 simulated models, and on every grader seed tried.
ELBO_ESTIMATORS = {"away": (600, 1), "posterior": (200, 4)}
N_ELBO_REFERENCE = 50_000


def linear_gaussian_model(rng) -> dict:
    """p(z) = N(0, I_K), p(x|z) = N(Wz + b, η I_D) with orthogonal columns of W: the posterior is diagonal."""
    D, K = 4, 2
    Q, _ = np.linalg.qr(rng.normal(size=(D, D)))
    W = Q[:, :K] * rng.uniform(0.8, 2.0, K)
    return {"W": _r(W, 6), "b": _r(rng.normal(0, 1, D)), "eta": float(np.round(rng.uniform(0.3, 1.0), 4))}


def log_evidence(model, x) -> float:
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    cov = W @ W.T + eta * np.eye(len(b))
    diff = np.asarray(x) - b
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (diff @ np.linalg.solve(cov, diff) + logdet + len(b) * math.log(2 * math.pi)))


def exact_posterior(model, x):
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    precision = np.eye(W.shape[1]) + W.T @ W / eta  # diagonal: W has orthogonal columns
    var = 1.0 / np.diag(precision)
    return var * (W.T @ (np.asarray(x) - b)) / eta, 0.5 * np.log(var)


def _kl(mu, log_sigma) -> np.ndarray:
    return (0.5 * (mu**2 + np.exp(2 * log_sigma) - 1) - log_sigma).sum(-1)


def log_likelihoods(model, x, mu, log_sigma, eps) -> np.ndarray:
    """log p(x | z) at z = μ + σ ⊙ ε for noise ε of shape (..., K)."""
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    z = np.asarray(mu) + np.exp(log_sigma) * np.asarray(eps)
    residual = np.asarray(x) - (z @ W.T + b)
    return -0.5 * (residual**2).sum(-1) / eta - 0.5 * len(b) * math.log(2 * math.pi * eta)


def elbo_moments(model, x, mu, log_sigma) -> tuple[float, float]:
    """The exact ELBO(q) and Var_q[log p(x | z)] for the linear-Gaussian model (closed forms).

    With a = x − b − Wμ and B = W diag(σ): log p(x|z) = c − ||a − Bε||²/(2η), E||a − Bε||² = ||a||² + tr(BᵀB)
    and Var||a − Bε||² = 2 tr((BᵀB)²) + 4 ||Bᵀa||².
    """
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    a = np.asarray(x) - b - W @ np.asarray(mu)
    B = W * np.exp(log_sigma)
    BtB = B.T @ B
    expected_log_lik = -0.5 * (a @ a + np.trace(BtB)) / eta - 0.5 * len(b) * math.log(2 * math.pi * eta)
    variance = (2 * np.trace(BtB @ BtB) + 4 * np.sum((B.T @ a) ** 2)) / (4 * eta**2)
    return float(expected_log_lik - _kl(np.asarray(mu), np.asarray(log_sigma))), float(variance)


def make_elbo_inputs(rng):
    model = linear_gaussian_model(rng)
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    K = W.shape[1]
    x = W @ rng.normal(size=K) + b + math.sqrt(eta) * rng.normal(size=len(b))
    x = np.round(x, 6)
    # Away from the posterior: μ fits x by least squares (a ⟂ columns of W), so log p(x|z) is a weighted
    # chi-square in ε -- its skew tells the estimator from a Gaussian of the same mean and variance.
    least_squares = np.linalg.lstsq(W, x - b, rcond=None)[0]
    m_post, ls_post = exact_posterior(model, x)
    qs = {"away": (least_squares, rng.uniform(-0.3, 0.5, K)), "posterior": (m_post, ls_post)}
    estimators = {}
    for name, (R, S) in ELBO_ESTIMATORS.items():
        m, ls = qs[name]
        estimators[name] = {"mu": _r(m, 8), "log_sigma": _r(ls, 8), "eps": _r(rng.normal(size=(R, S, K)), 6)}
    return {
        "model": model,
        "x": x.tolist(),
        "mu": _r(rng.normal(0, 1, K)),
        "log_sigma": _r(rng.uniform(-1.5, 0.5, K)),
        "eps": _r(rng.normal(size=(N_ELBO_SMALL, K)), 6),
        "estimators": estimators,
        "reference_seed": _seed(rng),
    }


def ELBO_RESULT(inputs):  # noqa: N802
    K = len(inputs["mu"])
    return Fields(
        {
            "value": Call(Number()),
            "gradient": Call(Array((2, K))),
            "estimates": Fields(
                {name: ListOf(Call(Number()), len(q["eps"])) for name, q in inputs["estimators"].items()}
            ),
        }
    )


def _reference_elbo(inputs, mu, log_sigma, eps):
    """The ELBO estimate as defined, in torch (for its autograd gradient), with the driver's log-likelihood."""
    log_likelihood = DRIVERS.linear_gaussian_log_likelihood(inputs["model"])
    z = mu + log_sigma.exp() * eps
    return log_likelihood(_t(inputs["x"]), z).mean() - gaussian_kl_standard_normal(mu, log_sigma)


ESTIMATOR_WORDS = {"away": "for a q away from the posterior", "posterior": "at the exact posterior"}


@np.errstate(over="ignore", invalid="ignore")  # absurd values fail the tests, quietly
def _estimator_problems(inputs, name: str, outcomes, rng, details: dict) -> list[str]:
    """Why the student's estimates for one q are not distributed as the ELBO estimator (empty: they are)."""
    q, model, x = inputs["estimators"][name], inputs["model"], inputs["x"]
    words = ESTIMATOR_WORDS[name]
    try:
        estimates = values(outcomes, "elbo")
    except Wrong as err:
        return [f"{words}: {err}"]
    mu, log_sigma, eps = np.array(q["mu"]), np.array(q["log_sigma"]), np.array(q["eps"])
    R, S, K = eps.shape
    definition = log_likelihoods(model, x, mu, log_sigma, eps).mean(-1) - _kl(mu, log_sigma)
    exact_elbo, variance = elbo_moments(model, x, mu, log_sigma)
    variance /= S
    details[name] = {"exact_elbo": exact_elbo, "variance": variance, "mean_estimate": float(estimates.mean())}
    if np.all(_close(estimates, definition)):
        return []  # the definition on the grader's noise: the estimator's distribution by construction
    alpha = ALPHA / (3 * len(ELBO_ESTIMATORS))
    problems = []
    z_mean = abs(estimates.mean() - exact_elbo) / math.sqrt(variance / R)
    if z_mean > z_threshold(1, alpha):
        problems.append(f"{words}, the estimates average {z_mean:.1f} standard errors from the exact ELBO")
    ok, measured, z_var = variance_matches(estimates[:, None], np.array([exact_elbo]), variance, alpha=alpha)
    if not ok:
        problems.append(
            f"{words}, their variance is {measured / variance:.2f} times that of the estimator with S = {S} "
            f"({z_var:.1f} standard errors away)"
        )
    reference = log_likelihoods(model, x, mu, log_sigma, rng.normal(size=(N_ELBO_REFERENCE, S, K))).mean(-1) - _kl(
        mu, log_sigma
    )
    p_value = float(stats.ks_2samp(estimates, reference).pvalue)
    details[name]["ks_p_value"] = p_value
    if p_value < alpha:
        problems.append(f"{words}, their distribution is not the estimator's (two-sample KS test, p = {p_value:.1e})")
    return problems


def check_elbo(inputs, result):
    rubric = Rubric()
    mu = _t(inputs["mu"]).requires_grad_(True)
    log_sigma = _t(inputs["log_sigma"]).requires_grad_(True)
    expected = _reference_elbo(inputs, mu, log_sigma, _t(inputs["eps"]))
    exact_grads = np.stack([g.numpy() for g in torch.autograd.grad(expected, (mu, log_sigma))])
    value = result["value"]
    rubric.details.update(expected=float(expected.detach()), got=float(value.value) if value.ok else value.failure)
    rubric.part(
        "the estimate (1/S) Σ_s log p(x | z_s) − KL(q ‖ p(z)) on the grader's model and noise",
        1.0,
        value.ok and bool(_close(float(value.value), float(expected.detach()))),
        f"elbo {value.failure}" if not value.ok else "it differs from the definition",
    )
    gradient = result["gradient"]
    rubric.part(
        "differentiable: its gradient w.r.t. μ and log σ is the pathwise gradient of the definition",
        1.0,
        gradient.ok and bool(np.all(_close(gradient.value, exact_grads))),
        f"the gradient of elbo {gradient.failure}"
        if not gradient.ok
        else "the gradients w.r.t. μ and log σ are not those of the definition",
    )
    rubric.details["log_evidence"] = log_evidence(inputs["model"], inputs["x"])
    rng = np.random.default_rng(inputs["reference_seed"])
    problems = []
    for name, outcomes in result["estimates"].items():
        problems += _estimator_problems(inputs, name, outcomes, rng, rubric.details)
    rubric.part(
        "as an estimator, over many noise batches: unbiased for the exact ELBO (below log p(x), equal to it at the "
        "exact posterior), with the variance and the distribution of the estimate as defined",
        1.0,
        not problems,
        "; ".join(problems[:2]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 sample_gumbel and gumbel_softmax

N_GUMBEL, N_REPEAT = 10_000, 20
TAUS = [1.0, 0.5, 0.1, 0.01]


def make_gumbel_inputs(rng):
    N, K = 16, int(rng.integers(3, 6))  # 16 rows: noise other than g almost surely changes some argmax
    logits = rng.normal(0, 1.5, (N, K))
    g = -np.log(-np.log(rng.uniform(1e-12, 1 - 1e-12, (N, K))))
    repeat = _seed(rng)
    return {
        "logits": _r(logits),
        "g": _r(g, 6),
        "taus": TAUS,
        "freq_logits": _r(rng.normal(0, 1, K)),
        "n_noise": N_GUMBEL,
        "noise_seed": _seed(rng),
        "n_repeat": N_REPEAT,
        "repeat_seeds": [repeat, repeat, _seed(rng)],  # the same generator seed twice, then another
    }


def GUMBEL_RESULT(inputs):  # noqa: N802
    shape, K = np.shape(inputs["logits"]), len(inputs["freq_logits"])
    return Fields(
        {
            "relaxed": ListOf(Call(Array(shape)), len(inputs["taus"])),
            "noise": Call(Array((inputs["n_noise"], K))),
            "repeats": ListOf(Call(Array((inputs["n_repeat"], K))), len(inputs["repeat_seeds"])),
        }
    )


@np.errstate(over="ignore", invalid="ignore")  # absurd values fail the tests, quietly
def _gumbel_noise_problems(inputs, noise: np.ndarray, details: dict) -> list[str]:
    """Why ``noise`` is not independent Gumbel(0, 1) draws (empty: it passes every test)."""
    K = len(inputs["freq_logits"])
    alpha = ALPHA / 4
    flat = noise.reshape(-1, 1)
    mean_test = mean_matches(flat, np.array([EULER_GAMMA]), alpha=alpha)
    var_ok, var_measured, var_z = variance_matches(flat, np.array([EULER_GAMMA]), math.pi**2 / 6, alpha=alpha)
    ks_p = float(stats.kstest(flat[:, 0], "gumbel_r").pvalue)
    freq_logits = np.array(inputs["freq_logits"])
    p = np.exp(freq_logits - freq_logits.max())
    p /= p.sum()
    counts = np.eye(K)[(freq_logits + noise).argmax(-1)]
    freq_test = mean_matches(counts, p, alpha=alpha)
    details["noise"] = {
        "mean": float(flat.mean()),
        "variance": var_measured,
        "ks_p_value": ks_p,
        "argmax_frequencies": counts.mean(0).tolist(),
        "softmax": p.tolist(),
    }
    problems = []
    if not mean_test.passed:
        problems.append(f"the mean is {mean_test.worst_z:.1f} standard errors from the Gumbel mean γ")
    if not var_ok:
        problems.append(f"the variance is {var_z:.1f} standard errors from π²/6")
    if ks_p < alpha:
        problems.append(f"the draws do not follow the Gumbel(0, 1) CDF (KS test, p = {ks_p:.1e})")
    if not freq_test.passed:
        problems.append(
            f"the argmax frequency of category {freq_test.worst_index} is {freq_test.worst_z:.1f} standard "
            "errors from its softmax probability"
        )
    return problems


def check_gumbel(inputs, result):
    rubric = Rubric()
    logits, g = np.array(inputs["logits"]), np.array(inputs["g"])
    y = logits + g
    wrong, warm_ok, cold_ok, cold_msg = [], True, True, ""
    for tau, outcome in zip(inputs["taus"], result["relaxed"], strict=True):
        if not outcome.ok:
            wrong.append(f"τ={tau}: gumbel_softmax {outcome.failure}")
            warm_ok = warm_ok and tau < 0.5
            cold_ok = cold_ok and tau != min(inputs["taus"])
            continue
        got = outcome.value
        scaled = y / tau
        expected = np.exp(scaled - scaled.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        if not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            wrong.append(f"τ={tau}")
            warm_ok = warm_ok and tau < 0.5
        if tau == min(inputs["taus"]):
            # rows whose two largest logits + g are at least 0.1 apart are within K·e^{-10} of one-hot at τ = 0.01
            top2 = np.sort(y, axis=-1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) >= 0.1
            far = np.abs(got - np.eye(y.shape[1])[y.argmax(-1)]).max(-1)
            if np.any(far[clear] > 1e-3):
                cold_ok, cold_msg = False, f"{int((far[clear] > 1e-3).sum())} rows are not one-hot at τ = {tau}"
    failures = {o.failure for o in result["relaxed"]}
    rubric.part(
        f"softmax((logits + g) / τ) with the grader's Gumbel noise g, for τ in {inputs['taus']}",
        1.0,
        not wrong,
        f"gumbel_softmax {failures.pop()}"
        if len(failures) == 1 and None not in failures
        else "wrong for " + "; ".join(wrong[:3]),
    )
    # A hard one-hot for every τ is one-hot at τ = 0.01 too: the limit counts only for a relaxed sample.
    rubric.part(
        "as τ → 0 the relaxed samples become one_hot(argmax(logits + g))",
        0.5,
        warm_ok and cold_ok,
        cold_msg if warm_ok else "the samples at τ ≥ 0.5 are not the relaxed softmax((logits + g) / τ)",
    )

    noise = result["noise"]
    problems = (
        [f"sample_gumbel {noise.failure}"]
        if not noise.ok
        else _gumbel_noise_problems(inputs, noise.value, rubric.details)
    )
    rubric.part(
        f"sample_gumbel draws independent Gumbel(0, 1) noise ({N_GUMBEL}×K draws): its CDF (KS test), mean γ, "
        "variance π²/6, and argmax(logits + g) ~ softmax(logits)",
        1.0,
        not problems,
        "; ".join(problems),
    )
    repeats = result["repeats"]
    if problems:
        generator_msg = "needs Gumbel noise first"
    elif not all(o.ok for o in repeats):
        generator_msg = next(f"sample_gumbel {o.failure}" for o in repeats if not o.ok)
    elif not np.array_equal(repeats[0].value, repeats[1].value):
        generator_msg = "two generators with the same seed gave different noise (draw the uniforms with `generator`)"
    elif np.array_equal(np.sort(repeats[0].value, axis=None), np.sort(repeats[2].value, axis=None)):
        generator_msg = "generators with different seeds gave the same noise (or the same values in another order)"
    else:
        generator_msg = ""
    rubric.part(
        "sample_gumbel draws with the given generator: the same seed gives the same noise, another seed other noise",
        0.5,
        not generator_msg,
        generator_msg,
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.2 straight_through


def make_straight_through_inputs(rng):
    N, K = 6, int(rng.integers(3, 6))
    return {
        "logits": _r(rng.normal(0, 1.5, (N, K))),
        "tau": float(np.round(rng.uniform(0.3, 2.0), 4)),
        "w": _r(rng.normal(0, 1, (N, K))),
    }


def STRAIGHT_THROUGH_RESULT(inputs):  # noqa: N802
    shape = np.shape(inputs["logits"])
    return Fields({"forward": Call(Array(shape)), "backward": Call(Array(shape))})


def check_straight_through(inputs, result) -> Verdict:
    rubric = Rubric()
    logits, tau, w = _t(inputs["logits"]).requires_grad_(True), inputs["tau"], _t(inputs["w"])
    soft = torch.softmax(logits / tau, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).double()
    (soft_grad,) = torch.autograd.grad((w * soft).sum(), logits)
    reference = reference_straight_through(soft.detach())  # course_utils' implementation agrees with the definition
    assert torch.equal(reference, hard)
    forward = result["forward"]
    forward_ok = forward.ok and np.array_equal(forward.value, hard.numpy())
    rubric.part(
        "forward: exactly one_hot(argmax soft) on every row",
        1.0,
        forward_ok,
        f"straight_through {forward.failure}"
        if not forward.ok
        else f"{int((np.abs(forward.value - hard.numpy()).max(-1) > 0).sum())} of {len(hard)} rows are not the "
        "one-hot argmax",
    )
    rubric.details["soft_gradient"] = soft_grad.numpy().tolist()
    backward = result["backward"]
    if not backward.ok:
        message = f"the backward pass through straight_through {backward.failure}"
    elif not np.allclose(backward.value, soft_grad.numpy(), rtol=1e-6, atol=1e-9):
        message = "the gradient reaching the logits is not the gradient the soft sample would have"
    elif not forward_ok:
        message = "the gradient is the soft sample's, but the value is not the hard one-hot (returning soft is not it)"
    else:
        message = ""
    rubric.part(
        "backward: the gradient is exactly that of the soft sample, with the hard value (value hard, gradient soft)",
        1.0,
        not message,
        message,
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a3_reparameterization.ipynb",
    cell_timeout=120,
    cell_budget=60,
    forbidden=("course_utils.estimators",),  # the notebook's rules: the course's reference code is not an answer
    questions=[
        Question(
            "gaussian_rsample",
            DRIVERS.gaussian_rsample,
            make_rsample_inputs,
            RSAMPLE_RESULT,
            check_rsample,
            timeout=30,
            title="A.1 gaussian_rsample",
        ),
        Question(
            "gaussian_kl",
            DRIVERS.gaussian_kl,
            make_kl_inputs,
            KL_RESULT,
            check_kl,
            timeout=10,
            check_only=("mc_seed",),
            title="A.2 gaussian_kl",
        ),
        Question(
            "elbo",
            DRIVERS.elbo,
            make_elbo_inputs,
            ELBO_RESULT,
            check_elbo,
            timeout=30,
            check_only=("reference_seed",),
            title="A.3 elbo",
        ),
        Question(
            "gumbel_softmax",
            DRIVERS.gumbel_softmax,
            make_gumbel_inputs,
            GUMBEL_RESULT,
            check_gumbel,
            timeout=30,
            title="B.1 sample_gumbel and gumbel_softmax",
        ),
        Question(
            "straight_through",
            DRIVERS.straight_through,
            make_straight_through_inputs,
            STRAIGHT_THROUGH_RESULT,
            check_straight_through,
            timeout=20,
            title="B.2 straight_through",
        ),
    ],
)
