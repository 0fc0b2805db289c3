"""Assignment-specific corpus cases for a2_policy_gradients (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, partly_right, read, replace_function

# Honest but incomplete: the advantages and the entropy solved, the losses and the training loop left as stubs.
PARTLY_RIGHT = ["advantages", "policy_entropy"]
LOOP_FUNCTION = "advantages"
RAISE_FUNCTION = "policy_entropy"
QUESTIONS_USING = {
    "advantages": ["advantages"],  # in PARTLY_RIGHT train_a2c is a stub, so nothing else calls it
    "policy_entropy": ["policy_entropy", "train_a2c"],  # the raising case starts from the solution: training calls it
}

# Common mistakes, each caught by a property check.
TRUNCATION_AS_TERMINATION = """
rewards, values, next_values = (torch.as_tensor(x).detach().double() for x in (rewards, values, next_values))
done = torch.as_tensor(terminated, dtype=torch.bool) | torch.as_tensor(truncated, dtype=torch.bool)
delta = rewards + gamma * (~done).double() * next_values - values   # mistake: no bootstrap after a truncation
A, running = torch.zeros_like(rewards), torch.zeros_like(rewards[0])
for t in reversed(range(len(rewards))):
    running = delta[t] + gamma * lam * (~done[t]).double() * running
    A[t] = running
return A
"""
NO_STOP_GRADIENT = """
if log_probs.shape != advantages.shape:
    raise ValueError("shapes differ")
return -(advantages * log_probs).mean()   # mistake: no ⊥, the policy loss also trains the critic
"""

# Weights written by hand, not trained: four weights on (x, ẋ, θ, θ̇) that push the cart towards where the pole
# falls. On CartPole-v1 itself this controller balances every episode to the limit (mean return 500).
HARD_CODED_POLICY = """
policy = CategoricalPolicy(4, 2)
weights = {key: torch.zeros_like(w) for key, w in policy.state_dict().items()}
weights["net.0.weight"][0] = torch.tensor([0.1, 0.5, 3.0, 1.0])   # hidden unit 0 = tanh(0.1 x + 0.5 ẋ + 3 θ + θ̇)
weights["net.2.weight"][0, 0] = 1.0
weights["net.4.weight"][1, 0] = 1.0      # "push right" when the unit is positive
weights["net.4.weight"][0, 0] = -1.0
return weights
"""

# Another method than A2C: random search over linear controllers sign(w · s) on the environment the grader
# provides, keeping the best one (no gradient, so no policy_loss). It learns the variant, so only the run with
# policy_loss reversed can tell it from A2C.
RANDOM_SEARCH = """
import gymnasium as gym
rng = np.random.default_rng(seed)
env = gym.make("CartPole-v1")
best, best_return, steps = None, -1.0, 0
while steps < total_steps and best_return < 300:
    w = rng.normal(size=4)
    returns = []
    for _ in range(3):
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        done, episode_return = False, 0.0
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(w @ obs > 0))
            episode_return, steps, done = episode_return + reward, steps + 1, terminated or truncated
        returns.append(episode_return)
    if min(returns) > best_return:
        best, best_return = w, min(returns)
policy = CategoricalPolicy(4, 2)
weights = {key: torch.zeros_like(v) for key, v in policy.state_dict().items()}
weights["net.0.weight"][0] = torch.tensor(best, dtype=torch.float32)
weights["net.2.weight"][0, 0] = 1.0
weights["net.4.weight"][1, 0] = 1.0
weights["net.4.weight"][0, 0] = -1.0
return weights
"""

# The course's reference implementations, which the notebook forbids, reached without an import statement.
REFERENCE_ADVANTAGES = """
import importlib
reference = getattr(importlib.import_module("course_utils.returns"), "gae_advantages")
A, _ = reference(rewards, values, next_values, terminated, truncated, gamma, lam)
return A
"""
REFERENCE_TRAINING = """
import importlib
a2c = importlib.import_module("course_utils.algorithms.a2c")
config = getattr(a2c, "A2CConfig")(total_steps=total_steps, seed=seed)
return getattr(a2c, "train")(config, progress_bar=False).policy.state_dict()
"""


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "advantages", TRUNCATION_AS_TERMINATION)
    nb = replace_function(nb, "policy_loss", NO_STOP_GRADIENT)
    return dump(nb)


def _hard_coded(ctx: Context) -> bytes:
    return dump(replace_function(read(ctx.solution), "train_a2c", HARD_CODED_POLICY))


def _random_search(ctx: Context) -> bytes:
    return dump(replace_function(partly_right(ctx), "train_a2c", RANDOM_SEARCH))


def _reference_code(ctx: Context) -> bytes:
    nb = replace_function(partly_right(ctx), "advantages", REFERENCE_ADVANTAGES)
    return dump(replace_function(nb, "train_a2c", REFERENCE_TRAINING))


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "two classic mistakes: a truncation treated as a termination, and advantages not detached in the "
            "policy loss",
            # advantages: batches without truncations right, those with truncations wrong; policy_loss: value and
            # actor gradient right, the critic gets a gradient. Training uses both, so its outcome is not fixed.
            expect={
                "policy_loss": (0.0, 3.0),
                "value_loss": "full",
                "policy_entropy": "full",
                "advantages": (0.0, 4.0),
            },
        ),
        Case(
            "cheat_hard_coded_policy",
            _hard_coded,
            "train_a2c returns a hand-written four-weight controller that balances CartPole-v1 to the limit: the "
            "grader's CartPole variant and the run with policy_loss reversed both stop it",
            base="solution",
            expect={
                "policy_loss": "full",
                "value_loss": "full",
                "policy_entropy": "full",
                "advantages": "full",
                "train_a2c": 0.0,
            },
        ),
        Case(
            "cheat_random_search",
            _random_search,
            "train_a2c runs a random search over linear controllers instead of A2C: it balances the variant, but "
            "not through policy_loss",
            base="partly_right",
            expect={"train_a2c": 0.0},
        ),
        Case(
            "cheat_reference_code",
            _reference_code,
            "advantages and train_a2c call the course's reference implementations (forbidden) through importlib "
            "and getattr: the sandbox hides them",
            base="partly_right",
            expect={"advantages": 0.0, "train_a2c": 0.0},
        ),
    ]
