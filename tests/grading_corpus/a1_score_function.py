"""Assignment-specific corpus cases for a1_score_function (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, partly_right, read, replace_function

# Honest but incomplete: Part A's first two functions solved, everything else left as the stub.
PARTLY_RIGHT = ["discounted_return", "returns_to_go"]
LOOP_FUNCTION = "returns_to_go"
RAISE_FUNCTION = "optimal_baseline"
# Each question's time limit while the corpus is graded: the solution's slowest question takes 1.3 s of CPU here (the
# limit counts CPU time, so a busy machine does not stretch it), so the looping submission stops after 4 s instead of
# the assignment's 20 s (the limit itself is what is being tested).
QUESTION_TIMEOUT = 4.0
PACKED_QUESTIONS = ["train_policy"]  # its driver returns the trained θ packed as an .npz (h.call_arrays)
QUESTIONS_USING = {
    "returns_to_go": ["returns_to_go"],  # in PARTLY_RIGHT the estimators are stubs, so nothing else calls it
    "optimal_baseline": ["optimal_baseline"],
}

# Common mistakes, each confined to one question and caught by a property check.
NO_BOOTSTRAP = """
if not (terminated or truncated):
    raise ValueError("episode not finished")
rewards = np.asarray(rewards, dtype=np.float64)
G, running = np.zeros(len(rewards)), 0.0          # mistake: never bootstraps after truncation
for t in reversed(range(len(rewards))):
    running = rewards[t] + gamma * running
    G[t] = running
return G
"""
STDERR_NOT_DIVIDED = """
pi = softmax_policy(torch.as_tensor(theta, dtype=torch.float64)).numpy()
returns = np.array([discounted_return(sample_episode(mdp, pi, rng).rewards, mdp.gamma) for _ in range(n_episodes)])
return float(returns.mean()), float(returns.std(ddof=1))  # mistake: the standard deviation, not the standard error
"""
IGNORES_BASELINE = """
theta = torch.as_tensor(theta, dtype=torch.float64).detach().requires_grad_(True)
f = torch.as_tensor(f, dtype=torch.float64)
probs = torch.softmax(theta, dim=-1)
z = torch.as_tensor(rng.choice(len(f), size=n_samples, p=probs.detach().numpy()))
surrogate = (f[z] * torch.log_softmax(theta, dim=-1)[z]).mean()   # mistake: the baseline is never subtracted
return torch.autograd.grad(surrogate, theta)[0]
"""

# Oracles and shortcuts: each passed the old checks (or a part of them) without doing what its question asks.
# The exact J plus Gaussian noise of the estimator's exact variance (second-moment Bellman equation), with a
# standard error drawn as s/√N would be for Gaussian returns: unbiased and calibrated, but no episode is sampled.
J_EXACT_PLUS_NOISE = """
pi = softmax_policy(torch.as_tensor(theta, dtype=torch.float64)).numpy()
live = ~mdp.terminal
P = np.einsum("sa,sat->st", pi, mdp.P) * live[:, None] * live[None, :]
V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P, (pi * mdp.R).sum(1) * live)
c = (pi * (mdp.R**2 + 2 * mdp.gamma * mdp.R * (mdp.P @ V))).sum(1) * live
M = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma**2 * P, c)
J = float(mdp.p0 @ V)
sd = float(np.sqrt((mdp.p0 @ M - J**2) / n_episodes))
return J + sd * rng.normal(), sd * float(np.sqrt(rng.chisquare(n_episodes - 1) / (n_episodes - 1)))
"""
# The exact gradient plus Gaussian noise with the n-sample estimator's exact covariance (it passed B.1 and B.2).
SF_EXACT_PLUS_NOISE = """
p = torch.softmax(torch.as_tensor(theta, dtype=torch.float64), -1).numpy()
terms = (np.asarray(f, dtype=np.float64) - baseline)[:, None] * (np.eye(len(p)) - p)
mean = p @ terms
cov = (p[:, None, None] * np.einsum("ki,kj->kij", terms - mean, terms - mean)).sum(0) / n_samples
return torch.as_tensor(rng.multivariate_normal(mean, cov))
"""
# The exact ∇J (autograd through exact_J) plus Gaussian noise with the estimator's covariance, measured once per
# problem with the course's reference (it passed C.2's mean and variance tests; the sandbox now hides the reference).
PG_EXACT_PLUS_NOISE = """
from course_utils.tabular import score_function_gradients
if weighting not in ("total", "reward_to_go"):
    raise ValueError(weighting)
th = torch.as_tensor(theta, dtype=torch.float64).detach()
key = (id(mdp), tuple(th.numpy().ravel()), weighting, baseline, n_episodes)
cache = globals().setdefault("_oracle_cache", {})
if key not in cache:
    t = th.clone().requires_grad_(True)
    exact_J(mdp, t).backward()
    per = score_function_gradients(mdp, th.numpy(), 2000 * n_episodes, np.random.default_rng(0), weighting=weighting,
                                   baseline=baseline or None)
    cache[key] = (t.grad.numpy().ravel(), np.cov(per.reshape(2000, n_episodes, -1).mean(1).T))
mean, cov = cache[key]
return torch.as_tensor(rng.multivariate_normal(mean, cov, method="eigh").reshape(th.shape))
"""
# The course's reference estimator, which the notebook forbids: the sandbox hides course_utils.tabular_gradients
# (where course_utils.tabular loads score_function_gradients from), so the import fails.
PG_REFERENCE = """
from course_utils.tabular import score_function_gradients
per = score_function_gradients(mdp, theta, n_episodes, rng, weighting=weighting, baseline=baseline or None)
return torch.as_tensor(per.mean(0))
"""
# Value iteration (a near-greedy θ reaches J*), and for single iterations, which the grader checks, the exact
# gradient plus noise instead of an estimate (value iteration passed C.3).
TRAIN_BY_VALUE_ITERATION = """
if n_iterations == 1:
    t = torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64, requires_grad=True)
    exact_J(mdp, t).backward()
    g = t.grad.numpy()
    return torch.as_tensor(learning_rate * (g + rng.normal(0, 0.5, size=g.shape) * (g != 0)))
Q, _ = value_iteration(mdp)
theta = torch.zeros(mdp.n_states, mdp.n_actions, dtype=torch.float64)
theta[torch.arange(mdp.n_states), torch.as_tensor(Q.argmax(1))] = 10.0
return theta
"""


def _oracles(ctx: Context) -> bytes:
    nb = partly_right(ctx)
    nb = replace_function(nb, "estimate_J", J_EXACT_PLUS_NOISE)
    nb = replace_function(nb, "score_function_estimate", SF_EXACT_PLUS_NOISE)
    nb = replace_function(nb, "estimate_policy_gradient", PG_EXACT_PLUS_NOISE)
    nb = replace_function(nb, "train_policy", TRAIN_BY_VALUE_ITERATION)
    return dump(nb)


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "returns_to_go", NO_BOOTSTRAP)
    nb = replace_function(nb, "estimate_J", STDERR_NOT_DIVIDED)
    nb = replace_function(nb, "score_function_estimate", IGNORES_BASELINE)
    return dump(nb)


def _cheat_reference(ctx: Context) -> bytes:
    return dump(replace_function(read(ctx.solution), "estimate_policy_gradient", PG_REFERENCE))


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "three classic mistakes: no bootstrapping after truncation, standard deviation reported as the "
            "standard error, a baseline that is never subtracted",
            # returns_to_go: terminated episodes and the ValueError right, truncation and γ = 1 wrong;
            # estimate_J: unbiased, but its standard error fails; baseline: ignoring b keeps the estimates
            # unbiased (and those of an estimator: the one without a baseline), so only the variance and
            # distribution parts fail. Nothing else uses the broken functions.
            expect={
                "discounted_return": "full",
                "returns_to_go": (0.0, 3.0),
                "estimate_J": 1.0,
                "score_function": "full",
                "baseline": (0.0, 2.0),
                "optimal_baseline": "full",
                "policy_gradient": "full",
                "train_policy": "full",
            },
        ),
        Case(
            "oracles",
            _oracles,
            "the honest partial submission with oracles: exact values plus calibrated Gaussian noise for J(θ), the "
            "score-function estimate and the policy gradient; value iteration (with faked single steps) for training",
            base="partly_right",
            # estimate_J: J_hat ∓ stderr are not returns of the MDP; score_function and baseline: the estimates
            # miss the estimator's finite support; policy_gradient: the Kolmogorov-Smirnov tests against the
            # grader's simulation fail for each weighting (and the oracle's import of the hidden reference
            # estimator fails first); train_policy: single iterations are no policy-gradient
            # steps, so reaching J* earns nothing.
            expect={
                "discounted_return": "full",
                "returns_to_go": "full",
                "estimate_J": 0.0,
                "score_function": 0.0,
                "baseline": 0.0,
                "policy_gradient": 0.0,
                "train_policy": 0.0,
            },
        ),
        Case(
            "cheat_reference",
            _cheat_reference,
            "the solution with estimate_policy_gradient replaced by a call of the course's reference "
            "score_function_gradients, which the sandbox hides (the import fails)",
            base="solution",
            # the solution's train_policy calls estimate_policy_gradient, so it fails with it; the rest is full.
            expect={
                "discounted_return": "full",
                "returns_to_go": "full",
                "estimate_J": "full",
                "score_function": "full",
                "baseline": "full",
                "optimal_baseline": "full",
                "policy_gradient": 0.0,
                "train_policy": 0.0,
            },
        ),
    ]
