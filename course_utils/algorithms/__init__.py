"""Reference implementations of the course's RL algorithms: one uniform family.

Notebooks 03 (REINFORCE), 04 (baselines), 05 (A2C, PPO), 08 (DQN) and 09 (TRPO) write
each algorithm out themselves and compare with, or train with, these. Every
module has a ``@dataclass`` config with a ``fast()`` preset and one readable
loop with the same signature::

    from course_utils.algorithms import ppo
    result = ppo.train(ppo.PPOConfig(seed=0))      # -> TrainResult
    evaluate(result.policy)                        # course_utils.evaluation

==========  ===========================  ==================================================
module      config                       what
==========  ===========================  ==================================================
reinforce   ``ReinforceConfig``          REINFORCE with reward-to-go, optional V_φ baseline
a2c         ``A2CConfig``                advantage actor-critic, N envs, GAE
ppo         ``PPOConfig``                A2C with several clipped epochs per batch
dqn         ``DQNConfig``                deep Q-learning: replay memory, target network
trpo        ``TRPOConfig``               natural-gradient steps within a KL budget δ, line search
sac         ``SACConfig``                soft actor-critic, continuous actions: squashed Gaussian, twin Q
common      —                            ``TrainResult``, config checks, and the actor-critic
                                         set-up A2C, PPO and TRPO share (none imports a sibling)
==========  ===========================  ==================================================

``train(config, *, on_update=None, progress_bar=True) -> TrainResult`` is the
shared signature; :class:`TrainResult` is defined in :mod:`.common`. Training
does not change torch's thread count: notebooks and the benchmark call
``set_torch_threads(1)`` themselves.

One naming scheme for every config field (a field means the same in every
config that has it):

- ``env_id`` gymnasium id; ``seed`` the one seed everything is derived from;
  ``total_steps`` the budget in environment steps (all environments together);
- ``gamma`` discount γ; ``gae_lambda`` GAE λ;
- ``lr`` Adam step size (``value_lr`` for a separately optimised critic);
  ``anneal_lr`` decays ``lr`` linearly to 0 over ``total_steps``;
- ``hidden`` the hidden layer widths of every network, a tuple;
- ``n_envs`` environments stepped side by side, ``n_steps`` steps per
  environment between updates, ``n_epochs`` passes over a batch;
- ``minibatch_size`` transitions per gradient step on an on-policy batch,
  ``batch_size`` transitions per gradient step sampled from a replay memory;
- ``*_coef`` weights of loss terms (``ent_coef``, ``vf_coef``);
  ``max_grad_norm`` clips the gradient's global norm (0 = no clipping);
- ``normalize_advantages``, ``use_*`` / ``baseline`` switches (True/False).
"""

from .common import OnUpdate, TrainResult

__all__ = ["OnUpdate", "TrainResult"]
