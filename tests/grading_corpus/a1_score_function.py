"""Assignment-specific corpus cases for a1_score_function (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, read, replace_function

# Honest but incomplete: Part A's first two functions solved, everything else left as the stub.
PARTLY_RIGHT = ["discounted_return", "returns_to_go"]
LOOP_FUNCTION = "returns_to_go"
RAISE_FUNCTION = "optimal_baseline"
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


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "returns_to_go", NO_BOOTSTRAP)
    nb = replace_function(nb, "estimate_J", STDERR_NOT_DIVIDED)
    nb = replace_function(nb, "score_function_estimate", IGNORES_BASELINE)
    return dump(nb)


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "three classic mistakes: no bootstrapping after truncation, standard deviation reported as the "
            "standard error, a baseline that is never subtracted",
            # returns_to_go: terminated episodes and the ValueError right, truncation and γ = 1 wrong;
            # estimate_J: unbiased, but its standard error fails; baseline: ignoring b keeps the estimate
            # unbiased, so only the variance parts fail. Nothing else uses the broken functions.
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
    ]
