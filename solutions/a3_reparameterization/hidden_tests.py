"""Hidden checks for assignment 3, "Reparameterization and Gumbel-softmax" (never released, never sandboxed).

How grading works is described in ``course_grader/spec.py``: for each question
``make_inputs`` draws fresh inputs here, ``DRIVER_*`` (public, no expected
values) calls the student's functions on them inside the sandbox, and
``check_*`` tests properties of the returned numbers here, in the grader's
process.

Where a function is deterministic given its noise, the grader supplies the
noise (ε for the Gaussian, g for Gumbel-softmax) and checks the exact value and
the exact pathwise gradient: a submission that draws its own noise, or returns
something merely distributed right, cannot pass. Where the student draws the
noise (``sample_gumbel``), only distributional properties can be checked, so
they are: the Gumbel mean and variance, and argmax frequencies against
softmax(logits). Statistical tests have a false-alarm probability of about
1e-6 each (``course_grader.checks.ALPHA``). The reference implementations in
``course_utils.estimators`` are used here, never in the student's answers.
Messages name the property that failed, never the expected number.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from course_grader.checks import Rubric, Wrong, as_array, as_float, mean_matches, value, variance_matches, z_threshold
from course_grader.spec import Assignment, Question
from course_utils.estimators import gaussian_kl_standard_normal
from course_utils.estimators import straight_through as reference_straight_through

EULER_GAMMA = 0.5772156649015329


def _t(x) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=torch.float64)


def _r(x, digits: int = 4) -> list:
    return np.round(np.asarray(x, dtype=np.float64), digits).tolist()


# ----------------------------------------------------------------------------- A.1 gaussian_rsample

N_PATH = 4000


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


DRIVER_RSAMPLE = """
import torch

def drive(inputs, h):
    f = h.student.gaussian_rsample
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    out = {"value": h.call(f, t(inputs["mu"]), t(inputs["log_sigma"]), t(inputs["eps"]))}

    def pathwise():
        # one row per noise draw: per-sample gradients of f(z) = ||z - c||² w.r.t. μ and log σ
        eps = t(inputs["path_eps"])
        mu = t(inputs["path_mu"]).repeat(len(eps), 1).requires_grad_(True)
        log_sigma = t(inputs["path_log_sigma"]).repeat(len(eps), 1).requires_grad_(True)
        z = f(mu, log_sigma, eps)
        loss = ((z - t(inputs["c"])) ** 2).sum()
        return list(torch.autograd.grad(loss, (mu, log_sigma)))

    out["pathwise"] = h.call(pathwise)
    return out
"""


def check_rsample(inputs, result):
    if not isinstance(result, dict):
        raise Wrong("the grader's driver returned no result (the notebook may have interfered with it)")
    rubric = Rubric()
    mu, log_sigma, eps = (np.array(inputs[k]) for k in ("mu", "log_sigma", "eps"))
    expected = mu + np.exp(log_sigma) * eps
    got = as_array(value(result.get("value"), "gaussian_rsample"), "gaussian_rsample", expected.shape)
    rubric.details["value"] = {"expected": expected.tolist()}
    rubric.part(
        "z = μ + exp(log σ) ⊙ ε on the grader's μ, log σ and noise ε",
        1.0,
        np.allclose(got, expected, rtol=1e-6, atol=1e-9),
        f"wrong in {int((~np.isclose(got, expected, rtol=1e-6, atol=1e-9)).sum())} of {got.size} entries",
    )

    K = len(inputs["path_mu"])
    m, s, c = np.array(inputs["path_mu"]), np.exp(np.array(inputs["path_log_sigma"])), np.array(inputs["c"])
    path_eps = np.array(inputs["path_eps"])
    try:
        grads = as_array(
            value(result.get("pathwise"), "the gradient through gaussian_rsample"),
            "the pathwise gradients",
            (2, len(path_eps), K),
        )
    except Wrong as err:
        rubric.part(
            "differentiable: the gradient of f(z) reaches μ and log σ and is the pathwise derivative",
            1.0,
            False,
            str(err),
        )
        rubric.part(
            "the pathwise gradient of E[||z − c||²] is unbiased against its closed form",
            1.0,
            False,
            "no gradients to test",
        )
        return rubric.verdict()
    z = m + s * path_eps
    exact_mu, exact_ls = 2 * (z - c), 2 * (z - c) * s * path_eps  # d/dμ and d/dlog σ of ||μ + σε − c||²
    rubric.part(
        "differentiable: the gradient of f(z) reaches μ and log σ and is the pathwise derivative",
        1.0,
        np.allclose(grads[0], exact_mu, rtol=1e-6, atol=1e-8) and np.allclose(grads[1], exact_ls, rtol=1e-6, atol=1e-8),
        "the gradients through your z are not those of μ + exp(log σ) ⊙ ε",
    )
    # E||z − c||² = ||μ − c||² + Σσ²: gradient 2(μ − c) w.r.t. μ and 2σ² w.r.t. log σ.
    closed = np.concatenate([2 * (m - c), 2 * s**2])
    test = mean_matches(np.concatenate([grads[0], grads[1]], axis=1), closed)
    rubric.details["closed_form_gradient"] = closed.tolist()
    rubric.part(
        f"the pathwise gradient of E[||z − c||²] averaged over {len(path_eps)} noise draws matches its closed "
        "form (w.r.t. μ and log σ)",
        1.0,
        test.passed,
        f"coordinate {test.worst_index} is {test.worst_z:.1f} standard errors away (a correct estimator stays "
        f"within {test.threshold:.1f})",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.2 gaussian_kl

N_MC_KL = 20_000


def make_kl_inputs(rng):
    K = int(rng.integers(2, 5))
    mu = rng.normal(0, 1, (6, K))
    log_sigma = rng.uniform(-1.5, 1.0, (6, K))
    mu[0], log_sigma[0] = 0.0, 0.0  # q = N(0, I): KL = 0
    log_sigma[1] = rng.uniform(0.5, 1.0, K)  # wide q: a sign error in log σ is large here
    log_sigma[2] = rng.uniform(-1.5, -0.8, K)  # narrow q
    return {"mu": _r(mu), "log_sigma": _r(log_sigma), "mc_seed": int(rng.integers(2**62))}


DRIVER_KL = """
import torch

def drive(inputs, h):
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    return {"kl": h.call(h.student.gaussian_kl, t(inputs["mu"]), t(inputs["log_sigma"]))}
"""


def check_kl(inputs, result):
    if not isinstance(result, dict):
        raise Wrong("the grader's driver returned no result (the notebook may have interfered with it)")
    rubric = Rubric()
    mu, log_sigma = np.array(inputs["mu"]), np.array(inputs["log_sigma"])
    got = as_array(value(result.get("kl"), "gaussian_kl"), "gaussian_kl", (len(mu),))
    closed = gaussian_kl_standard_normal(_t(mu), _t(log_sigma)).numpy()
    rubric.details["closed_form"] = closed.tolist()
    bad = ~np.isclose(got, closed, rtol=1e-6, atol=1e-9)
    rubric.part(
        "KL(N(μ, diag σ²) ‖ N(0, I)) equals its closed form on the grader's rows (0 for q = N(0, I))",
        1.0,
        not bad.any(),
        f"wrong on {int(bad.sum())} of {len(bad)} rows",
    )
    # Monte Carlo: E_q[log q(z) − log p(z)] with the grader's own samples, one standard error per row.
    rng = np.random.default_rng(inputs["mc_seed"])
    eps = rng.normal(size=(N_MC_KL, *mu.shape))
    z = mu + np.exp(log_sigma) * eps
    log_ratio = (-0.5 * eps**2 - log_sigma + 0.5 * z**2).sum(-1)  # log q(z) − log N(z; 0, I); the 2π terms cancel
    mean, se = log_ratio.mean(0), log_ratio.std(0, ddof=1) / math.sqrt(N_MC_KL)
    gap = np.abs(got - mean)
    with np.errstate(divide="ignore", invalid="ignore"):  # q = N(0, I): every sample's log-ratio is exactly 0
        z_scores = np.where(se > 0, gap / np.where(se > 0, se, 1.0), np.where(gap < 1e-9, 0.0, np.inf))
    threshold = z_threshold(len(mu))
    rubric.details["monte_carlo"] = {"mean": mean.tolist(), "se": se.tolist()}
    rubric.part(
        f"agrees with a Monte Carlo estimate of E_q[log q(z) − log p(z)] ({N_MC_KL} samples per row)",
        1.0,
        bool(np.all(z_scores <= threshold)),
        f"row {int(np.argmax(z_scores))} is {z_scores.max():.1f} standard errors away (allowed {threshold:.1f})",
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- A.3 elbo

N_ELBO_SMALL, N_ELBO_LARGE = 5, 4000


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


def make_elbo_inputs(rng):
    model = linear_gaussian_model(rng)
    W, b, eta = np.array(model["W"]), np.array(model["b"]), model["eta"]
    K = W.shape[1]
    x = W @ rng.normal(size=K) + b + math.sqrt(eta) * rng.normal(size=len(b))
    m_post, ls_post = exact_posterior(model, x)
    qs = [(rng.normal(0, 1, K), rng.uniform(-1.5, 0.5, K)) for _ in range(3)] + [(m_post, ls_post)]
    return {
        "model": model,
        "x": _r(x, 6),
        "mu": _r(qs[0][0]),
        "log_sigma": _r(qs[0][1]),
        "eps": _r(rng.normal(size=(N_ELBO_SMALL, K)), 6),
        "bound_qs": [[_r(m, 8), _r(ls, 8)] for m, ls in qs],
        "bound_eps": _r(rng.normal(size=(N_ELBO_LARGE, K)), 6),
    }


DRIVER_ELBO = """
import math
import torch

# The ELBO is graded on its own: while it runs, the notebook's gaussian_rsample and gaussian_kl are the
# reference ones, so a mistake in A.1 or A.2 does not cost points here a second time.
REFERENCE = {
    "gaussian_rsample": lambda mu, log_sigma, eps: mu + log_sigma.exp() * eps,
    "gaussian_kl": lambda mu, log_sigma: (0.5 * (mu**2 + (2 * log_sigma).exp() - 1) - log_sigma).sum(-1),
}

def drive(inputs, h):
    f = h.student.elbo
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    W, b, eta = t(inputs["model"]["W"]), t(inputs["model"]["b"]), inputs["model"]["eta"]

    def log_likelihood(x, z):
        # log N(x; W z + b, η I) for each row of z: (S, K) -> (S,)
        return -0.5 * ((x - (z @ W.T + b)) ** 2).sum(-1) / eta - 0.5 * len(b) * math.log(2 * math.pi * eta)

    namespace = getattr(f, "__globals__", {})
    saved = {k: namespace[k] for k in REFERENCE if k in namespace}
    namespace.update(REFERENCE)
    try:
        x = t(inputs["x"])
        out = {"value": h.call(f, x, t(inputs["mu"]), t(inputs["log_sigma"]), t(inputs["eps"]), log_likelihood)}

        def gradient():
            mu = t(inputs["mu"]).requires_grad_(True)
            log_sigma = t(inputs["log_sigma"]).requires_grad_(True)
            return list(torch.autograd.grad(f(x, mu, log_sigma, t(inputs["eps"]), log_likelihood), (mu, log_sigma)))

        out["gradient"] = h.call(gradient)
        eps = t(inputs["bound_eps"])
        out["bound"] = [h.call(f, x, t(m), t(ls), eps, log_likelihood) for m, ls in inputs["bound_qs"]]
    finally:
        for k in REFERENCE:
            namespace.pop(k, None)
        namespace.update(saved)
    return out
"""


def _reference_elbo(inputs, mu, log_sigma, eps):
    """The ELBO estimate as defined, in torch (for its autograd gradient), and its per-sample log-likelihoods."""
    model = inputs["model"]
    W, b, eta = _t(model["W"]), _t(model["b"]), model["eta"]
    z = mu + log_sigma.exp() * eps
    log_lik = -0.5 * ((_t(inputs["x"]) - (z @ W.T + b)) ** 2).sum(-1) / eta - 0.5 * len(b) * math.log(2 * math.pi * eta)
    return log_lik.mean() - gaussian_kl_standard_normal(mu, log_sigma), log_lik


def check_elbo(inputs, result):
    if not isinstance(result, dict):
        raise Wrong("the grader's driver returned no result (the notebook may have interfered with it)")
    rubric = Rubric()
    mu = _t(inputs["mu"]).requires_grad_(True)
    log_sigma = _t(inputs["log_sigma"]).requires_grad_(True)
    expected, _ = _reference_elbo(inputs, mu, log_sigma, _t(inputs["eps"]))
    exact_grads = [g.numpy() for g in torch.autograd.grad(expected, (mu, log_sigma))]
    got = as_float(value(result.get("value"), "elbo"), "elbo")
    rubric.details.update(expected=float(expected.detach()), got=got)
    rubric.part(
        "the estimate (1/S) Σ_s log p(x | z_s) − KL(q ‖ p(z)) on the grader's model and noise",
        1.0,
        bool(np.isclose(got, float(expected.detach()), rtol=1e-6, atol=1e-8)),
        "it differs from the definition",
    )
    try:
        K = len(inputs["mu"])
        grads = as_array(value(result.get("gradient"), "the gradient of elbo"), "the ELBO's gradient", (2, K))
        ok = np.allclose(grads[0], exact_grads[0], rtol=1e-6, atol=1e-8) and np.allclose(
            grads[1], exact_grads[1], rtol=1e-6, atol=1e-8
        )
        message = "the gradients w.r.t. μ and log σ are not those of the definition"
    except Wrong as err:
        ok, message = False, str(err)
    rubric.part(
        "differentiable: its gradient w.r.t. μ and log σ is the pathwise gradient of the definition", 1.0, ok, message
    )

    log_px = log_evidence(inputs["model"], inputs["x"])
    rubric.details["log_evidence"] = log_px
    bound_entries = result.get("bound")
    failures = []
    if not isinstance(bound_entries, list) or len(bound_entries) != len(inputs["bound_qs"]):
        failures.append("the grader's driver returned no results")
    else:
        threshold = z_threshold(len(bound_entries))
        for k, ((m, ls), entry) in enumerate(zip(inputs["bound_qs"], bound_entries)):
            posterior = k == len(bound_entries) - 1
            try:
                estimate = as_float(value(entry, "elbo"), "elbo")
            except Wrong as err:
                failures.append(str(err))
                continue
            _, log_lik = _reference_elbo(inputs, _t(m), _t(ls), _t(inputs["bound_eps"]))
            se = float(log_lik.std()) / math.sqrt(len(log_lik))
            z = (estimate - log_px) / se
            if posterior and abs(z) > threshold:
                failures.append(f"at the exact posterior the ELBO is {abs(z):.1f} standard errors from log p(x)")
            elif not posterior and z > threshold:
                failures.append(f"at q number {k + 1} the ELBO exceeds log p(x) by {z:.1f} standard errors")
    rubric.part(
        f"ELBO ≤ log p(x) (exact, from the model's marginal N(b, WWᵀ + ηI)) with {N_ELBO_LARGE} samples, "
        "and ELBO = log p(x) when q is the exact posterior",
        1.0,
        not failures,
        "; ".join(failures[:2]),
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- B.1 sample_gumbel and gumbel_softmax

N_GUMBEL = 10_000
TAUS = [1.0, 0.5, 0.1, 0.01]


def make_gumbel_inputs(rng):
    N, K = 16, int(rng.integers(3, 6))  # 16 rows: noise other than g almost surely changes some argmax
    logits = rng.normal(0, 1.5, (N, K))
    g = -np.log(-np.log(rng.uniform(1e-12, 1 - 1e-12, (N, K))))
    return {
        "logits": _r(logits),
        "g": _r(g, 6),
        "taus": TAUS,
        "freq_logits": _r(rng.normal(0, 1, K)),
        "n_noise": N_GUMBEL,
        "noise_seed": int(rng.integers(2**62)),
    }


DRIVER_GUMBEL = """
import torch

def drive(inputs, h):
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    f = h.student.gumbel_softmax
    out = {"relaxed": [h.call(f, t(inputs["logits"]), tau, t(inputs["g"])) for tau in inputs["taus"]]}
    K = len(inputs["freq_logits"])
    generator = torch.Generator().manual_seed(inputs["noise_seed"] % 2**63)
    out["noise"] = h.call(h.student.sample_gumbel, (inputs["n_noise"], K), generator)
    return out
"""


def check_gumbel(inputs, result):
    if not isinstance(result, dict) or not isinstance(result.get("relaxed"), list):
        raise Wrong("the grader's driver returned no result (the notebook may have interfered with it)")
    rubric = Rubric()
    logits, g = np.array(inputs["logits"]), np.array(inputs["g"])
    y = logits + g
    wrong, cold_ok, cold_msg = [], True, ""
    for tau, entry in zip(inputs["taus"], result["relaxed"]):
        try:
            got = as_array(value(entry, "gumbel_softmax"), "gumbel_softmax", logits.shape)
        except Wrong as err:
            wrong.append(f"τ={tau}: {err}")
            cold_ok = False
            continue
        scaled = y / tau
        expected = np.exp(scaled - scaled.max(-1, keepdims=True))
        expected /= expected.sum(-1, keepdims=True)
        if not np.allclose(got, expected, rtol=1e-6, atol=1e-9):
            wrong.append(f"τ={tau}")
        if tau == min(inputs["taus"]):
            # rows whose two largest logits + g are at least 0.1 apart are within K·e^{-10} of one-hot at τ = 0.01
            top2 = np.sort(y, axis=-1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) >= 0.1
            hard = np.eye(y.shape[1])[y.argmax(-1)]
            far = np.abs(got - hard).max(-1)
            if np.any(far[clear] > 1e-3):
                cold_ok, cold_msg = False, f"{int((far[clear] > 1e-3).sum())} rows are not one-hot at τ = {tau}"
    rubric.part(
        f"softmax((logits + g) / τ) with the grader's Gumbel noise g, for τ in {inputs['taus']}",
        1.5,
        not wrong,
        "wrong for " + "; ".join(wrong[:3]),
    )
    rubric.part("as τ → 0 the samples become one_hot(argmax(logits + g))", 0.5, cold_ok, cold_msg or "no values")

    K = len(inputs["freq_logits"])
    try:
        noise = as_array(value(result.get("noise"), "sample_gumbel"), "sample_gumbel", (inputs["n_noise"], K))
    except Wrong as err:
        rubric.part(
            "sample_gumbel draws Gumbel(0, 1) noise: mean γ, variance π²/6, and argmax(logits + g) ~ softmax(logits)",
            1.0,
            False,
            str(err),
        )
        return rubric.verdict()
    flat = noise.reshape(-1, 1)
    mean_test = mean_matches(flat, np.array([EULER_GAMMA]), alpha=1e-6 / 3)
    var_ok, var_measured, var_z = variance_matches(flat, np.array([EULER_GAMMA]), math.pi**2 / 6, alpha=1e-6 / 3)
    freq_logits = np.array(inputs["freq_logits"])
    p = np.exp(freq_logits - freq_logits.max())
    p /= p.sum()
    counts = np.eye(K)[(freq_logits + noise).argmax(-1)]
    freq_test = mean_matches(counts, p, alpha=1e-6 / 3)
    rubric.details["noise"] = {
        "mean": float(flat.mean()),
        "variance": var_measured,
        "argmax_frequencies": counts.mean(0).tolist(),
        "softmax": p.tolist(),
    }
    problems = []
    if not mean_test.passed:
        problems.append(f"the mean is {mean_test.worst_z:.1f} standard errors from the Gumbel mean γ")
    if not var_ok:
        problems.append(f"the variance is {var_z:.1f} standard errors from π²/6")
    if not freq_test.passed:
        problems.append(
            f"the argmax frequency of category {freq_test.worst_index} is {freq_test.worst_z:.1f} standard "
            "errors from its softmax probability"
        )
    rubric.part(
        f"sample_gumbel draws Gumbel(0, 1) noise ({N_GUMBEL}×K draws): mean γ, variance π²/6, and "
        "argmax(logits + g) ~ softmax(logits)",
        1.0,
        not problems,
        "; ".join(problems),
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


DRIVER_STRAIGHT_THROUGH = """
import torch

def drive(inputs, h):
    t = lambda x: torch.tensor(x, dtype=torch.float64)
    f = h.student.straight_through
    out = {"forward": h.call(f, torch.softmax(t(inputs["logits"]) / inputs["tau"], dim=-1))}

    def backward():
        logits = t(inputs["logits"]).requires_grad_(True)
        hard = f(torch.softmax(logits / inputs["tau"], dim=-1))
        return torch.autograd.grad((t(inputs["w"]) * hard).sum(), logits)[0]

    out["backward"] = h.call(backward)
    return out
"""


def check_straight_through(inputs, result):
    if not isinstance(result, dict):
        raise Wrong("the grader's driver returned no result (the notebook may have interfered with it)")
    rubric = Rubric()
    logits, tau, w = _t(inputs["logits"]).requires_grad_(True), inputs["tau"], _t(inputs["w"])
    soft = torch.softmax(logits / tau, dim=-1)
    hard = torch.nn.functional.one_hot(soft.argmax(-1), soft.shape[-1]).double()
    (soft_grad,) = torch.autograd.grad((w * soft).sum(), logits)
    reference = reference_straight_through(soft.detach())  # course_utils' implementation agrees with the definition
    assert torch.equal(reference, hard)
    got = as_array(value(result.get("forward"), "straight_through"), "straight_through", tuple(hard.shape))
    rubric.part(
        "forward: exactly one_hot(argmax soft) on every row",
        1.0,
        np.array_equal(got, hard.numpy()),
        f"{int((np.abs(got - hard.numpy()).max(-1) > 0).sum())} of {len(got)} rows are not the one-hot argmax",
    )
    rubric.details["soft_gradient"] = soft_grad.numpy().tolist()
    try:
        grad = as_array(
            value(result.get("backward"), "the backward pass through straight_through"),
            "the gradient through straight_through",
            tuple(hard.shape),
        )
        ok = np.allclose(grad, soft_grad.numpy(), rtol=1e-6, atol=1e-9)
        message = "the gradient reaching the logits is not the gradient the soft sample would have"
    except Wrong as err:
        ok, message = False, str(err)
    rubric.part(
        "backward: the gradient is exactly that of the soft sample (value hard, gradient soft)", 1.0, ok, message
    )
    return rubric.verdict()


# ----------------------------------------------------------------------------- the assignment

ASSIGNMENT = Assignment(
    notebook="a3_reparameterization.ipynb",
    cell_timeout=120,
    questions=[
        Question(
            "gaussian_rsample",
            DRIVER_RSAMPLE,
            make_rsample_inputs,
            check_rsample,
            timeout=30,
            title="A.1 gaussian_rsample",
        ),
        Question("gaussian_kl", DRIVER_KL, make_kl_inputs, check_kl, timeout=10, title="A.2 gaussian_kl"),
        Question("elbo", DRIVER_ELBO, make_elbo_inputs, check_elbo, timeout=30, title="A.3 elbo"),
        Question(
            "gumbel_softmax",
            DRIVER_GUMBEL,
            make_gumbel_inputs,
            check_gumbel,
            timeout=30,
            title="B.1 sample_gumbel and gumbel_softmax",
        ),
        Question(
            "straight_through",
            DRIVER_STRAIGHT_THROUGH,
            make_straight_through_inputs,
            check_straight_through,
            timeout=20,
            title="B.2 straight_through",
        ),
    ],
)
