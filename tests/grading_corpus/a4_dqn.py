"""Assignment-specific corpus cases for a4_dqn (see grading_corpus/__init__.py)."""

from __future__ import annotations

import copy

from . import Case, Context, append_code, dump, function_cell, read, replace_function

# Honest but incomplete: the TD targets and the ε schedule solved; the buffer, the target update and the
# training loop left as the stub (so the training question fails without any training time).
PARTLY_RIGHT = ["td_targets", "epsilon"]
LOOP_FUNCTION = "epsilon"
RAISE_FUNCTION = "update_target"
QUESTIONS_USING = {
    "epsilon": ["epsilon"],  # in PARTLY_RIGHT the training loop is a stub, so nothing else calls it
    "update_target": ["update_target", "train_dqn"],  # the training loop calls update_target
}

# Common mistakes, each caught by a property check.
TRUNCATION_IS_TERMINATION = """
with torch.no_grad():
    done = torch.clamp(terminated + truncated, max=1.0)        # mistake: a time-out treated as a terminal state
    return (rewards + gamma * (1.0 - done) * next_q_target.max(dim=1).values).float()
"""
RING_RIGHT = "self.pos = (self.pos + 1) % self.capacity"
RING_WRONG = (
    "self.pos = min(self.pos + 1, self.capacity - 1)  # mistake: once full, overwrites the newest slot, not the oldest"
)
UNTRAINED = """
torch.manual_seed(seed)
return q_network().state_dict()   # returns the network as initialised: no training at all
"""


# Oracles for train_dqn (issue 9): each must score 0 on it. None trains, so each grades in seconds.
HAND_CONTROLLER_WITH_THEATRE = """
def hand_net():
    # Four weights: push towards the side the pole falls to (θ + θ̇ > 0: right), with values 'of a trained Q'.
    net = q_network()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        w = torch.tensor([0.0, 0.0, 1.0, 1.0])
        net[0].weight[0], net[0].weight[1] = w, -w
        net[2].weight[0, 0] = net[2].weight[1, 1] = 1.0
        net[4].weight[:, :2] = torch.tensor([[-5.0, 5.0], [5.0, -5.0]])
        net[4].bias[:] = 40.0
    return net


def train_dqn(total_steps, seed):
    # Every piece called, every transition stored, the hand-written network passed to update_target: the counts
    # look like training, but nothing is learned.
    net = hand_net()
    target = copy.deepcopy(net)
    env = make_env("CartPole-v1", seed=seed)
    buffer = ReplayBuffer(100_000, 4, seed=seed)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    for step in range(total_steps):
        if rng.random() < epsilon(step, 1.0, 0.04, 4000):
            action = int(rng.integers(2))
        else:
            with torch.no_grad():
                action = int(net(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = env.reset()[0] if (terminated or truncated) else next_obs
        if step % 1000 == 999:
            batch = buffer.sample(32)
            td_targets(batch["reward"], target(batch["next_obs"]), batch["terminated"], batch["truncated"], 0.98)
            update_target(target, net, 1.0)
    return net.state_dict()
"""
REFERENCE_WITH_THEATRE = """
def train_dqn(total_steps, seed):
    # The course's reference DQN, reached indirectly; then the counts made to look like the notebook's pieces.
    # Without the sandbox hiding course_utils.algorithms.dqn this passes (measured); in it, the import fails.
    import importlib

    dqn = importlib.import_module("course_utils.algorithms." + "dqn")
    policy = getattr(dqn, "train")(getattr(dqn, "DQNConfig")(total_steps=total_steps, seed=seed), progress_bar=False).policy
    target = copy.deepcopy(policy)
    env = make_env("CartPole-v1", seed=seed)
    buffer = ReplayBuffer(100_000, 4, seed=seed)
    obs, _ = env.reset(seed=seed)
    for step in range(total_steps):
        epsilon(step, 1.0, 0.04, 4000)
        with torch.no_grad():
            action = int(policy(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = env.reset()[0] if (terminated or truncated) else next_obs
    batch = buffer.sample(32)
    with torch.no_grad():
        td_targets(batch["reward"], target(batch["next_obs"]), batch["terminated"], batch["truncated"], 0.98)
    update_target(target, policy, 1.0)
    return policy.state_dict()
"""
EVAL_SEED_HUNTER = """
honest_train_dqn = train_dqn


def train_dqn(total_steps, seed):
    # Looks for the evaluation's seeds anywhere in the process; trains honestly only if it finds them (an agent
    # tuned to known start states would pass below the pass mark). They are check-only: it never finds them.
    import gc

    found = [o for o in gc.get_objects() if isinstance(o, dict) and "eval_seed" in o]
    print("CHEAT: evaluation seeds found" if found else "CHEAT: no evaluation seed in reach")
    if found:
        return honest_train_dqn(total_steps, seed)
    torch.manual_seed(seed)
    return q_network().state_dict()
"""
# Degenerate answers (a constant, the input returned, a no-op, a sampler that always refuses): parts they would
# pass on their own (no gradient, terminal targets, ε never increases, a ValueError, online left unchanged) must
# give no credit.
DEGENERATE = """
def td_targets(rewards, next_q_target, terminated, truncated, gamma):
    return rewards.clone()


class ReplayBuffer:
    def __init__(self, capacity, obs_dim, seed):
        pass

    def __len__(self):
        return 0

    def add(self, obs, action, reward, next_obs, terminated, truncated):
        pass

    def sample(self, batch_size):
        raise ValueError("always refused")


def epsilon(step, start, end, decay_steps):
    if step < 0:
        raise ValueError("negative step")
    return float(end)


def update_target(target, online, tau):
    return None
"""
NOT_TRAIN_DQN = ["td_targets", "replay_buffer", "epsilon", "update_target"]


def class_cell(nb, name: str) -> int:
    """Index of the code cell that defines ``class name``."""
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and cell.source.startswith(f"class {name}"):
            return i
    raise KeyError(f"no cell defines class {name}")


def _partly_wrong(ctx: Context) -> bytes:
    nb = replace_function(read(ctx.solution), "td_targets", TRUNCATION_IS_TERMINATION)
    index = class_cell(nb, "ReplayBuffer")
    assert RING_RIGHT in nb.cells[index].source, "the solution's ReplayBuffer.add changed: update the corpus"
    nb = copy.deepcopy(nb)
    nb.cells[index].source = nb.cells[index].source.replace(RING_RIGHT, RING_WRONG)
    return dump(nb)


def _untrained(ctx: Context) -> bytes:
    nb = read(ctx.solution)
    function_cell(nb, "train_dqn")
    return dump(replace_function(nb, "train_dqn", UNTRAINED))


def _solution_plus(source: str):
    """The solution with ``source`` run after its last cell (redefining what it names)."""
    return lambda ctx: dump(append_code(read(ctx.solution), source))


def _degenerate(ctx: Context) -> bytes:
    return dump(append_code(read(ctx.stub), DEGENERATE))


def specific_cases(ctx: Context) -> list[Case]:
    return [
        Case(
            "partly_wrong",
            _partly_wrong,
            "two classic mistakes: truncation treated as termination in the TD target, and a replay buffer that "
            "once full overwrites its newest slot instead of the oldest",
            # td_targets: terminated, both flags, ordinary transitions, γ = 0 and no-gradient right; truncated and
            # γ = 1 wrong. ReplayBuffer: intact rows, uniform sampling, refusal and seeding right; contents wrong.
            # train_dqn is left out: it uses both broken functions, but CartPole's 100k buffer never wraps in
            # 12k steps and time-outs are rare, so its outcome is not what this case is about.
            expect={"td_targets": (0.0, 3.0), "replay_buffer": (0.0, 4.0), "epsilon": "full", "update_target": "full"},
        ),
        Case(
            "cheat_untrained",
            _untrained,
            "a training loop that returns the untrained network's weights",
            base="solution",
            expect={
                "td_targets": "full",
                "replay_buffer": "full",
                "epsilon": "full",
                "update_target": "full",
                "train_dqn": 0.0,
            },
        ),
        Case(
            "cheat_hand_controller",
            _solution_plus(HAND_CONTROLLER_WITH_THEATRE),
            "a four-weight hand-written CartPole controller with high values, dressed up with calls of every piece",
            base="solution",
            expect={**{q: "full" for q in NOT_TRAIN_DQN}, "train_dqn": 0.0},
        ),
        Case(
            "cheat_reference",
            _solution_plus(REFERENCE_WITH_THEATRE),
            "course_utils.algorithms.dqn's reference training reached through importlib, dressed up with calls of every piece",
            base="solution",
            expect={**{q: "full" for q in NOT_TRAIN_DQN}, "train_dqn": 0.0},
        ),
        Case(
            "cheat_eval_seeds",
            _solution_plus(EVAL_SEED_HUNTER),
            "looks for the evaluation seeds in the sandbox and trains only if it finds them",
            base="solution",
            expect={**{q: "full" for q in NOT_TRAIN_DQN}, "train_dqn": 0.0},
        ),
        Case(
            "degenerate",
            _degenerate,
            "degenerate answers: targets = rewards, a buffer that refuses every request, a constant ε, a no-op update",
            base="stub",
            expect={q: 0.0 for q in [*NOT_TRAIN_DQN, "train_dqn"]},
        ),
    ]
