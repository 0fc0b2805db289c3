"""Assignment-specific corpus cases for a2_policy_gradients (see grading_corpus/__init__.py)."""

from __future__ import annotations

from . import Case, Context, dump, read, replace_function

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
# A policy written by hand, not trained: push the cart towards the side the pole leans to. It balances for
# about 45 steps on average, far below the pass mark.
HARD_CODED_POLICY = """
policy = CategoricalPolicy(4, 2)
weights = {key: torch.zeros_like(w) for key, w in policy.state_dict().items()}
weights["net.0.weight"][0, 2] = 1.0      # hidden unit 0 = tanh(pole angle)
weights["net.2.weight"][0, 0] = 1.0
weights["net.4.weight"][1, 0] = 1.0      # logit of "push right" grows with the angle
weights["net.4.weight"][0, 0] = -1.0
return weights
"""


def _partly_wrong(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    nb = replace_function(nb, "advantages", TRUNCATION_AS_TERMINATION)
    nb = replace_function(nb, "policy_loss", NO_STOP_GRADIENT)
    return dump(nb)


def _hard_coded(ctx: Context) -> bytes:
    return dump(replace_function(read(ctx.solution), "train_a2c", HARD_CODED_POLICY))


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
            "train_a2c returns hand-written weights instead of training: they load, but fall short of the pass mark",
            base="solution",
            expect={
                "policy_loss": "full",
                "value_loss": "full",
                "policy_entropy": "full",
                "advantages": "full",
                "train_a2c": 0.0,
            },
        ),
    ]
