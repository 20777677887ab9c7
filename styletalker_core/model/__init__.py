"""The StyleTalker model: components of each kind composed by the latent arithmetic of the method.

For frame t (25 fps), with E the image encoder, A the audio encoder and G the generator::

    w_id      = E(reference)                                  [1, l, w]
    a         = A(audio)                                      [1, t, c]
    dw_lip_t  = LipMapper(a_{t-k..t+k}, w_id)                 [1, t, l, w]
    z_t       = posterior mean of a motion source video       motion-controllable mode
              ~ Prior(z_t | z_<t, a_<=t+lookahead)            audio-driven mode
    dw_mot_t  = MotionVAE.decode(z_t, w_id)
    w_t       = w_id + dw_lip_t + pose_scale * dw_mot_t       (dw_mot = 0 when still)
    x_t       = G.synthesis(w_t)

Using it::

    from styletalker_core.model import TalkingHead

    head = TalkingHead.from_checkpoint("runs/synthetic_64/model.safetensors")
    # reference: aligned face [3, h, w] in [-1, 1]; audio: [s] mono at 16 kHz
    video = head.generate(reference, audio, temperature=0.8, num_samples=2,
                          generator=torch.Generator().manual_seed(0))   # [2, t, 3, h, w]

    z = head.encode_motion(motion_frames, motion_audio)    # [T, z] posterior means
    video = head.generate(reference, audio, motion=z)      # motion-controllable

    for frames in head.stream(reference, audio, chunk_frames=250):   # long audio
        writer.write(frames[0])                              # [<=250, 3, h, w]

Options of ``stream``/``generate``: ``motion`` (z [T, z] or None), ``motion_fit`` ("loop":
the motion is trimmed, or looped back and forth when shorter than the audio; "trim": the
video stops with the shorter of the two), ``temperature`` (prior's base Gaussian scale),
``num_samples`` and ``generator`` (audio-driven draws), ``pose_scale``, ``still``,
``chunk_frames`` (frames per chunk; the prior's state and the audio features' context are
carried across chunks, so the result equals one pass and memory does not grow with the
length), ``batch_size`` (frames per generator call). ``num_frames(audio_samples, ...)``
says how many frames a call produces (ceil of the audio length in frames).

``stream_latents`` yields the W+ latents instead of frames; ``render`` turns latents into
frames. Training uses the same composition through :meth:`TalkingHead.training_latents`.
"""

from styletalker_core.model.latents import compose, gaussian_log_prob, motion_kl, reparameterize
from styletalker_core.model.motion_fit import MotionFit, fit_motion, output_frames
from styletalker_core.model.sync import SyncScores, offset_similarities, sync_loss, sync_scores
from styletalker_core.model.talking_head import ROLES, TalkingHead, TrainingLatents

__all__ = [
    "ROLES",
    "MotionFit",
    "SyncScores",
    "TalkingHead",
    "TrainingLatents",
    "compose",
    "fit_motion",
    "gaussian_log_prob",
    "motion_kl",
    "offset_similarities",
    "output_frames",
    "reparameterize",
    "sync_loss",
    "sync_scores",
]
