"""Contracts of the motion kinds: ``motion_vae`` (posterior over z, frame-by-frame decoder),
``prior`` (log p(z | audio), sampling in chunks with carried state) and ``flow`` (exact inverse,
log-determinants equal to the Jacobian's)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

from styletalker_core.checkpoint import load_checkpoint, save_checkpoint
from styletalker_core.interfaces import Flow, MotionVAE, Prior
from styletalker_core.testing.factory import ComponentFactory, explained, listed, require, without_gradient


def _reloaded(factory: ComponentFactory, role: str, module: torch.nn.Module) -> Any:
    """``module`` saved with save_checkpoint and loaded back with load_checkpoint, in ``module``'s mode."""
    with tempfile.TemporaryDirectory() as folder:
        path = save_checkpoint(Path(folder) / f"{role}.safetensors", {role: module})
        return load_checkpoint(path, factory.registries)[role].train(module.training)


# -- motion_vae ------------------------------------------------------------------------------


def _vae_inputs(vae: MotionVAE, b: int = 2, t: int = 7, seed: int = 1) -> tuple[torch.Tensor, ...]:
    """(dw [b, t, l, w], audio features [b, t, c], w_id [b, l, w], z [b, t, z])."""
    rng = torch.Generator().manual_seed(seed)
    dw = torch.randn(b, t, vae.num_ws, vae.w_dim, generator=rng)
    audio = torch.randn(b, t, vae.feature_dim, generator=rng)
    w_id = torch.randn(b, vae.num_ws, vae.w_dim, generator=rng)
    z = torch.randn(b, t, vae.z_dim, generator=rng)
    return dw, audio, w_id, z


def check_motion_vae_shapes(factory: ComponentFactory) -> None:
    vae = factory()
    require(isinstance(vae, MotionVAE), factory, f"built a {type(vae).__qualname__}, not a MotionVAE")
    dw, audio, w_id, z = _vae_inputs(vae)
    mean, log_var = vae.posterior(dw, audio)
    require(mean.shape == log_var.shape == (2, 7, vae.z_dim), factory,
            f"posterior gave {tuple(mean.shape)} and {tuple(log_var.shape)}, expected (2, 7, {vae.z_dim})")
    require(torch.isfinite(mean).all() and torch.isfinite(log_var).all(), factory, "non-finite posterior")
    decoded = vae.decode(z, w_id)
    require(decoded.shape == (2, 7, vae.num_ws, vae.w_dim), factory,
            f"decode gave {tuple(decoded.shape)}, expected (2, 7, {vae.num_ws}, {vae.w_dim})")


def check_motion_vae_decoder_works_frame_by_frame(factory: ComponentFactory) -> None:
    """dw_mot_t depends on z_t (and w_id) only, so motion can be decoded in chunks."""
    vae = factory().eval()
    _, _, w_id, z = _vae_inputs(vae)
    whole = vae.decode(z, w_id)
    pieces = torch.cat([vae.decode(z[:, :3], w_id), vae.decode(z[:, 3:], w_id)], dim=1)
    torch.testing.assert_close(pieces, whole, msg=explained(factory, "decoding in two chunks differs from one pass"))


def check_motion_vae_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    vae = factory()
    dw, audio, w_id, _ = _vae_inputs(vae)
    mean, log_var = vae.posterior(dw, audio)
    z = mean + (0.5 * log_var).exp() * torch.randn_like(mean)
    (vae.decode(z, w_id).pow(2).sum() + log_var.sum()).backward()
    missing = without_gradient(vae)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")


def check_motion_vae_checkpoint_round_trip(factory: ComponentFactory) -> None:
    vae = factory().eval()
    loaded = _reloaded(factory, "motion_vae", vae)
    dw, audio, w_id, z = _vae_inputs(vae)
    require(torch.equal(vae.posterior(dw, audio)[0], loaded.posterior(dw, audio)[0]), factory,
            "the reloaded VAE's posterior differs")
    require(torch.equal(vae.decode(z, w_id), loaded.decode(z, w_id)), factory, "the reloaded VAE decodes differently")


# -- prior -----------------------------------------------------------------------------------


def _audio(prior: Prior, b: int = 2, t: int = 10, seed: int = 1) -> torch.Tensor:
    """Audio features [b, t, c]."""
    return torch.randn(b, t, prior.feature_dim, generator=torch.Generator().manual_seed(seed))


def check_prior_shapes(factory: ComponentFactory) -> None:
    prior = factory().eval()
    require(isinstance(prior, Prior), factory, f"built a {type(prior).__qualname__}, not a Prior")
    for attribute in ("z_dim", "feature_dim", "lookahead"):
        require(isinstance(getattr(prior, attribute, None), int), factory, f"attribute {attribute} must be an int")
    features = _audio(prior)
    z, _ = prior.sample(features, generator=torch.Generator().manual_seed(0))
    require(z.shape == (2, 10, prior.z_dim), factory, f"sample gave {tuple(z.shape)}, expected (2, 10, {prior.z_dim})")
    require(torch.isfinite(z).all(), factory, "non-finite samples")
    log_p = prior.log_prob(z, features)
    require(log_p.shape == (2, 10), factory, f"log_prob gave {tuple(log_p.shape)}, expected (2, 10)")
    require(torch.isfinite(log_p).all(), factory, "non-finite log_prob of its own samples")


def check_prior_sampling_is_reproducible_and_chunks_continue_exactly(factory: ComponentFactory) -> None:
    """The same generator seed gives the same samples; two chunks (state and generator carried,
    the future audio given to the first) equal one pass."""
    prior = factory().eval()
    features = _audio(prior, t=12)
    with torch.no_grad():
        first, _ = prior.sample(features, 0.7, generator=torch.Generator().manual_seed(3))
        again, _ = prior.sample(features, 0.7, generator=torch.Generator().manual_seed(3))
        rng = torch.Generator().manual_seed(3)
        head, state = prior.sample(features[:, :5], 0.7, None, rng, future=features[:, 5:])
        tail, _ = prior.sample(features[:, 5:], 0.7, state, rng)
    require(torch.equal(first, again), factory, "sampling twice with the same generator seed gives different z")
    torch.testing.assert_close(torch.cat([head, tail], dim=1), first, atol=1e-5, rtol=0,
                               msg=explained(factory, "sampling in two chunks with carried state differs from one pass"))


def check_prior_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    prior = factory()
    features = _audio(prior)
    z = torch.randn(2, 10, prior.z_dim, generator=torch.Generator().manual_seed(2), requires_grad=True)
    (-prior.log_prob(z, features).mean()).backward()
    missing = without_gradient(prior)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")
    require(z.grad is not None and z.grad.abs().sum() > 0, factory, "log_prob does not depend on z")


def check_prior_checkpoint_round_trip(factory: ComponentFactory) -> None:
    prior = factory().eval()
    loaded = _reloaded(factory, "prior", prior)
    features = _audio(prior)
    z, _ = prior.sample(features, generator=torch.Generator().manual_seed(5))
    require(torch.equal(prior.log_prob(z, features), loaded.log_prob(z, features)), factory,
            "the reloaded prior gives another log_prob")
    z_loaded, _ = loaded.sample(features, generator=torch.Generator().manual_seed(5))
    require(torch.equal(z, z_loaded), factory, "the reloaded prior samples differently")


# -- flow ------------------------------------------------------------------------------------


def _flow(factory: ComponentFactory, seed: int = 0, perturb: float = 0.2) -> Flow:
    """The flow in float64, its parameters moved off their near-identity start."""
    flow = factory(seed=seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            parameter.add_(perturb * torch.randn_like(parameter))
    return flow.double()


def _flow_inputs(flow: Flow, n: int = 6, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(u [n, dim], context [n, context_dim]) in float64."""
    rng = torch.Generator().manual_seed(seed)
    # wide enough that spline flows see both their spline interval and their identity tails
    u = 3 * torch.randn(n, flow.dim, generator=rng, dtype=torch.float64)
    context = torch.randn(n, flow.context_dim, generator=rng, dtype=torch.float64)
    return u, context


def check_flow_shapes(factory: ComponentFactory) -> None:
    flow = _flow(factory)
    require(isinstance(flow, Flow), factory, f"built a {type(flow).__qualname__}, not a Flow")
    require(isinstance(flow.dim, int) and isinstance(flow.context_dim, int), factory, "dim and context_dim must be ints")
    u, context = _flow_inputs(flow)
    z, log_det = flow(u, context)
    back, inverse_log_det = flow.inverse(z, context)
    require(z.shape == u.shape and back.shape == u.shape, factory, f"forward/inverse change the shape {tuple(u.shape)}")
    require(log_det.shape == (u.shape[0],) and inverse_log_det.shape == (u.shape[0],), factory,
            f"log-determinants are {tuple(log_det.shape)} / {tuple(inverse_log_det.shape)}, expected ({u.shape[0]},)")
    require(torch.isfinite(z).all() and torch.isfinite(log_det).all(), factory, "non-finite forward")


def check_flow_inverse_undoes_forward(factory: ComponentFactory) -> None:
    flow = _flow(factory)
    u, context = _flow_inputs(flow)
    z, log_det = flow(u, context)
    back, inverse_log_det = flow.inverse(z, context)
    torch.testing.assert_close(back, u, rtol=0, atol=1e-9, msg=explained(factory, "inverse(forward(u)) != u"))
    torch.testing.assert_close(inverse_log_det, -log_det, rtol=0, atol=1e-9,
                               msg=explained(factory, "the inverse's log-determinant is not minus the forward's"))
    again, _ = flow(flow.inverse(u, context)[0], context)
    torch.testing.assert_close(again, u, rtol=0, atol=1e-9, msg=explained(factory, "forward(inverse(z)) != z"))


def check_flow_log_determinant_matches_the_autograd_jacobian(factory: ComponentFactory) -> None:
    flow = _flow(factory)
    u, context = _flow_inputs(flow, n=4)
    z, log_det = flow(u, context)
    _, inverse_log_det = flow.inverse(z, context)
    for row in range(u.shape[0]):
        forward_map = lambda x, c=context[row : row + 1]: flow(x[None], c)[0][0]  # noqa: E731
        inverse_map = lambda x, c=context[row : row + 1]: flow.inverse(x[None], c)[0][0]  # noqa: E731
        forward_jacobian = torch.autograd.functional.jacobian(forward_map, u[row])
        inverse_jacobian = torch.autograd.functional.jacobian(inverse_map, z[row])
        torch.testing.assert_close(torch.linalg.slogdet(forward_jacobian)[1], log_det[row], rtol=0, atol=1e-8,
                                   msg=explained(factory, "forward log|det| differs from the Jacobian's"))
        torch.testing.assert_close(torch.linalg.slogdet(inverse_jacobian)[1], inverse_log_det[row], rtol=0, atol=1e-8,
                                   msg=explained(factory, "inverse log|det| differs from the Jacobian's"))


def check_flow_gradients_reach_every_parameter(factory: ComponentFactory) -> None:
    flow = _flow(factory)
    u, context = _flow_inputs(flow, n=16)
    u.requires_grad_(True)
    context.requires_grad_(True)
    z, log_det = flow.inverse(u, context)
    ((z**2).sum() - log_det.sum()).backward()
    missing = without_gradient(flow)
    require(not missing, factory, f"no gradient reaches {listed(missing)}")
    require(u.grad is not None and u.grad.abs().sum() > 0, factory, "the inverse does not depend on its input")
    if list(flow.parameters()):  # a flow with parameters is conditional: gradients reach its context
        require(context.grad is not None and context.grad.abs().sum() > 0, factory, "the flow ignores its context")


def check_flow_sampling_a_batch_of_base_draws(factory: ComponentFactory) -> None:
    flow = _flow(factory).float()
    torch.manual_seed(3)
    u = torch.randn(64, flow.dim)
    context = torch.randn(64, flow.context_dim)
    z, log_det = flow(u, context)
    require(z.shape == (64, flow.dim) and z.dtype == torch.float32 and log_det.shape == (64,), factory,
            f"a float32 batch of 64 gave z {tuple(z.shape)} {z.dtype}, log_det {tuple(log_det.shape)}")
    require(torch.isfinite(z).all() and z.std() > 0, factory, "samples are not finite or all equal")


def check_flow_checkpoint_round_trip(factory: ComponentFactory) -> None:
    flow = _flow(factory).float()
    loaded = _reloaded(factory, "flow", flow)
    u, context = _flow_inputs(flow)
    u, context = u.float(), context.float()
    for original, restored in zip(flow(u, context), loaded(u, context)):
        require(torch.equal(original, restored), factory, "the reloaded flow maps differently")
