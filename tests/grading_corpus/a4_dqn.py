"""Assignment-specific corpus cases for a4_dqn (see grading_corpus/__init__.py)."""

from __future__ import annotations

import copy

from . import Case, Context, dump, function_cell, read, replace_function

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
    ]
