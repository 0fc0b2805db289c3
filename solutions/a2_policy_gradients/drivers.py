"""Drivers for assignment 2: public code that calls the student's functions inside the grading sandbox.

Each ``name(inputs, h)`` runs in the student's process after the notebook's cells, receives the
grader's inputs for one question (never its check-only keys) and returns plain data whose shape the
question's schema in ``hidden_tests.py`` fixes. No expected value and no check lives here.

Training (``train_a2c``) runs twice with the same budget, both times on a variant of CartPole-v1
drawn per run: the observation's four coordinates come in another order, some with their sign flipped
(:func:`cartpole_variant`). Learning is unaffected (the network's first layer, its initialisation and
Adam treat every coordinate alike), but weights written by hand for the usual order do not fit it. The
second run replaces the notebook's ``policy_loss`` by one with the same value and the opposite
gradient (:func:`reversed_policy_gradient`): a loop that learns through its policy loss then learns to
fail, while weights obtained any other way (by hand, by another method, by reference code) come out
as good as in the first run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools

import gymnasium as gym
import numpy as np
import torch

ENV_ID = "CartPole-v1"

# ----------------------------------------------------------------------------- A: losses on linear models


def linear_batch(b: dict):
    """The grader's batch for a linear actor (logits = obs @ W) and critic (V = obs @ u), as tensors with gradients."""
    obs = torch.tensor(b["obs"], dtype=torch.float64)
    W = torch.tensor(b["W"], dtype=torch.float64, requires_grad=True)
    u = torch.tensor(b["u"], dtype=torch.float64, requires_grad=True)
    return obs, W, u


def gradients(loss, params) -> list[torch.Tensor]:
    """∂loss/∂p for each p (zeros for a parameter the loss does not depend on); the loss must be one number."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _policy_loss_case(f, b: dict) -> dict:
    obs, W, u = linear_batch(b)
    actions = torch.tensor(b["actions"])
    log_probs = torch.log_softmax(obs @ W, dim=-1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    returns = torch.tensor(b["rewards"], dtype=torch.float64)
    advantages = returns - obs @ u  # A_t = G_t - V(s_t): depends on the critic's u
    loss = f(log_probs, advantages)
    g_W, g_u = gradients(loss, (W, u))
    return {"loss": loss.reshape(()), "grad_W": g_W, "grad_u": g_u}


def policy_loss(inputs, h):
    f = h.student.policy_loss
    return [h.call(_policy_loss_case, f, b) for b in inputs["batches"]]


def _value_loss_case(f, b: dict) -> dict:
    obs, _, u = linear_batch(b)
    next_obs = torch.tensor(b["next_obs"], dtype=torch.float64)
    values = obs @ u
    returns = torch.tensor(b["rewards"], dtype=torch.float64) + b["gamma"] * (next_obs @ u)  # a target built with u
    loss = f(values, returns)
    (g_u,) = gradients(loss, (u,))
    return {"loss": loss.reshape(()), "grad_u": g_u}


def value_loss(inputs, h):
    f = h.student.value_loss
    return [h.call(_value_loss_case, f, b) for b in inputs["batches"]]


def _entropy_case(f, logits) -> dict:
    logits = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    H = f(logits)
    (g,) = gradients(H, (logits,))
    return {"entropy": H.reshape(()), "grad": g}


def policy_entropy(inputs, h):
    f = h.student.policy_entropy
    return [h.call(_entropy_case, f, c["logits"]) for c in inputs["cases"]]


# ----------------------------------------------------------------------------- B: advantages


def advantages(inputs, h):
    f = h.student.advantages
    out = []
    for c in inputs["cases"]:
        args = [torch.tensor(c[k], dtype=torch.float64) for k in ("rewards", "values", "next_values")]
        flags = [torch.tensor(c[k], dtype=torch.bool) for k in ("terminated", "truncated")]
        out.append(h.call(f, *args, *flags, c["gamma"], c["lam"]))
    return out


# ----------------------------------------------------------------------------- C: training


def permute_observation(obs, permutation, signs):
    """The variant's observation: coordinate i is ``signs[i] * obs[permutation[i]]`` (any leading batch shape)."""
    return np.asarray(signs, dtype=np.float32) * np.asarray(obs, dtype=np.float32)[..., list(permutation)]


class PermutedObservation(gym.ObservationWrapper):
    """CartPole with its observation's coordinates reordered and some of them negated."""

    def __init__(self, env: gym.Env, permutation, signs):
        super().__init__(env)
        self.permutation, self.signs = list(permutation), list(signs)
        space = env.observation_space
        low, high = space.low[self.permutation], space.high[self.permutation]
        flip = np.asarray(self.signs) < 0
        self.observation_space = gym.spaces.Box(
            np.where(flip, -high, low), np.where(flip, -low, high), dtype=space.dtype
        )

    def observation(self, observation):
        return permute_observation(observation, self.permutation, self.signs)


def _variant_env(permutation, signs, **kwargs) -> gym.Env:
    from gymnasium.envs.classic_control.cartpole import CartPoleEnv

    return PermutedObservation(CartPoleEnv(**kwargs), permutation, signs)


@contextlib.contextmanager
def cartpole_variant(permutation, signs):
    """While active, ``gym.make``/``gym.make_vec``/``make_vec_env`` build the variant for the id "CartPole-v1".

    The registered spec is replaced by one whose entry point wraps CartPole (time limit and checks stay
    as registered); it has no vector entry point, so vector environments are built from the wrapped copies.
    """
    registry = gym.envs.registration.registry
    original = registry[ENV_ID]
    registry[ENV_ID] = dataclasses.replace(
        original,
        entry_point=functools.partial(_variant_env, list(permutation), list(signs)),
        vector_entry_point=None,
    )
    try:
        yield
    finally:
        registry[ENV_ID] = original


@contextlib.contextmanager
def reversed_policy_gradient(fn):
    """While active, the ``policy_loss`` that ``fn`` finds by name returns the same value with the opposite gradient."""
    namespace = getattr(fn, "__globals__", None)
    original = namespace.get("policy_loss") if isinstance(namespace, dict) else None
    if original is None:
        yield
        return

    def policy_loss(*args, **kwargs):
        loss = original(*args, **kwargs)
        return 2 * loss.detach() - loss  # the value of the loss, minus its gradient

    policy_loss.__doc__ = getattr(original, "__doc__", None)
    namespace["policy_loss"] = policy_loss
    try:
        yield
    finally:
        namespace["policy_loss"] = original


def trained_weights(fn, *args):
    """``fn(*args)``'s result as a state_dict (a network is accepted in its place)."""
    weights = fn(*args)
    return weights.state_dict() if hasattr(weights, "state_dict") else weights


def train_a2c(inputs, h):
    f = h.student.train_a2c
    with cartpole_variant(inputs["permutation"], inputs["signs"]):
        trained = h.call_arrays(trained_weights, f, inputs["total_steps"], inputs["seed"])
        with reversed_policy_gradient(f):
            reversed_run = h.call_arrays(trained_weights, f, inputs["total_steps"], inputs["reversed_seed"])
    return {"trained": trained, "reversed": reversed_run}
