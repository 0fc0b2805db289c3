"""Reference implementations of the course's policy-gradient algorithms.

Notebooks 03 (REINFORCE), 04 (baselines) and 05 (A2C, PPO) write each
algorithm out themselves and compare with, or train with, these. Every module
has a ``@dataclass`` config with a ``fast()`` preset and one readable loop::

    from course_utils.algorithms import ppo
    result = ppo.train(ppo.PPOConfig(seed=0))      # -> TrainResult
    evaluate(result.policy)                        # course_utils.evaluation

``train(config, *, on_update=None, progress_bar=True) -> TrainResult`` is the
shared signature (DQN follows it too); :class:`TrainResult` is defined in
:mod:`.common`. Training does not change torch's thread count: notebooks and
the benchmark call ``set_torch_threads(1)`` themselves.
"""

from .common import OnUpdate, TrainResult

__all__ = ["OnUpdate", "TrainResult"]
