"""Paste-back (styletalker_core.sample.paste_back) and video references in `styletalker sample`, on
real pixels: outside the face mask the picture is kept exactly, inside it is the generated face
warped back (checked against PIL's own affine warp), and the command writes full-size videos for a
photo and for every frame of a reference video."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from real_corpus import real_corpus  # noqa: F401 - the session fixture

from styletalker_core.cli.main import main as cli
from styletalker_core.data.preprocess import crop_face, ffhq_quad
from styletalker_core.media import probe_video, read_video_frames, write_image, write_video
from styletalker_core.model import fit_motion
from styletalker_core.sample.faces import resize_square
from styletalker_core.sample.paste_back import (
    crop_affine,
    even_size,
    face_mask,
    paste_face,
    source_indices,
    square_affine,
)

SIZE = 64


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def pil_warp(image: np.ndarray, affine: np.ndarray, height: int, width: int) -> np.ndarray:
    """The crop warped into the picture by PIL (independent of the module): output pixel centre p
    samples the crop at affine @ p."""
    mode = "F" if image.ndim == 2 else "RGB"
    source = Image.fromarray(image.astype(np.float32) if mode == "F" else image, mode=mode)
    data = tuple(float(v) for v in affine.reshape(-1))
    return np.asarray(source.transform((width, height), Image.Transform.AFFINE, data, Image.Resampling.BILINEAR))


def generated_face(seed: int = 0) -> np.ndarray:
    """A stand-in for a generated crop: smooth colours, nothing like the picture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.Resampling.BICUBIC))


@pytest.mark.parametrize("name", ["astronaut", "hopper"])
def test_outside_the_mask_the_picture_is_kept_exactly_and_inside_it_is_the_face_warped(real_corpus, name):  # noqa: F811
    if name not in real_corpus.photos:
        pytest.skip(f"{name} photo not installed")
    photo = real_corpus.photos[name]
    picture, affine = photo.image, crop_affine(photo.landmarks, SIZE)
    face = generated_face()
    out = paste_face(picture, face, affine)
    assert out.shape == picture.shape and out.dtype == np.uint8
    height, width = picture.shape[:2]
    alpha = pil_warp(face_mask(SIZE), affine, height, width)
    outside, inside = alpha == 0, alpha >= 0.999
    assert outside.mean() > 0.5 and inside.sum() > 500
    assert np.array_equal(out[outside], picture[outside])  # exactly, bit for bit
    direct = pil_warp(face, affine, height, width)
    assert psnr(out[inside], direct[inside]) > 40
    assert psnr(out[inside], picture[inside]) < 20  # the face really was replaced


def test_pasting_back_the_unchanged_crop_gives_the_picture_back(real_corpus):  # noqa: F811
    photo = next(iter(real_corpus.photos.values()))
    crop = crop_face(photo.image, ffhq_quad(photo.landmarks), 256)
    affine = crop_affine(photo.landmarks, 256)
    out = paste_face(photo.image, crop, affine)
    changed = np.any(out != photo.image, axis=-1)
    assert changed.sum() > 1000 and psnr(out[changed], photo.image[changed]) > 30  # the transforms agree
    # without alignment: the centre square
    part = photo.image[:, :400]
    square = resize_square(part, 256)
    again = paste_face(part, square, square_affine(*part.shape[:2], 256))
    changed = np.any(again != part, axis=-1)
    assert changed.sum() > 1000 and psnr(again[changed], part[changed]) > 25  # (a 400 -> 256 px resize lost detail)


def test_helpers():
    total = 23
    assert np.array_equal(source_indices(5, total), fit_motion(torch.arange(5.0)[:, None], total)[:, 0].long().numpy())
    assert np.array_equal(source_indices(30, 10), np.arange(10)) and not source_indices(1, 4).any()
    assert even_size(np.zeros((7, 9, 3))).shape == (6, 8, 3)
    mask = face_mask(SIZE)
    assert mask.max() == 1.0 and mask[0].max() == mask[-1].max() == mask[:, 0].max() == mask[:, -1].max() == 0.0


def test_sample_pastes_back_into_the_photo_at_its_resolution(real_corpus, tmp_path):  # noqa: F811
    name = next(iter(real_corpus.photos))
    photo = real_corpus.photos[name]
    picture = even_size(photo.image)
    write_image(tmp_path / "face.png", picture)
    out = tmp_path / "talk.mp4"
    speech = real_corpus.video_of(name)  # its audio track is the speech
    code = cli(["sample", "--image", str(tmp_path / "face.png"), "--audio", str(speech), "--out", str(out),
                "--paste-back", "--still", "--crf", "0", "--preset", "ultrafast", "--no-progress"])
    assert code == 0
    info = probe_video(out)
    assert (info.height, info.width) == picture.shape[:2]
    frames = read_video_frames(out)
    assert len(frames) == real_corpus.frames
    # the picture through the same lossless encoder: outside the mask (and 2 px beyond, where 4:2:0
    # chroma pairs pixels), every decoded frame equals it exactly
    write_video(tmp_path / "still.mp4", np.repeat(picture[None], 2, axis=0), None, crf=0, preset="ultrafast")
    still = read_video_frames(tmp_path / "still.mp4")[0]
    alpha = pil_warp(face_mask(SIZE), crop_affine(photo.landmarks, SIZE), *picture.shape[:2])
    from scipy.ndimage import binary_dilation

    outside = ~binary_dilation(alpha > 0, iterations=3)
    for frame in frames[::15]:
        assert np.array_equal(frame[outside], still[outside])
    inside = alpha >= 0.999
    assert psnr(frames[40][inside], still[inside]) < 30  # a generated face, not the photo


def test_sample_takes_a_video_reference_and_pastes_onto_every_frame(real_corpus, tmp_path, capsys):  # noqa: F811
    video = real_corpus.videos[-1]
    out = tmp_path / "talk.mp4"
    code = cli(["sample", "--image", str(video), "--reference-frame", "10", "--audio", str(video), "--out", str(out),
                "--paste-back", "--crf", "10", "--preset", "ultrafast", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    source, frames = read_video_frames(video), read_video_frames(out)
    assert frames.shape == source.shape  # every frame of the reference, at its size
    # the corners (far outside any face mask) are the reference video's own frames
    corner = (slice(0, 24), slice(0, 24))
    assert np.abs(frames[:, corner[0], corner[1]].astype(int) - source[:, corner[0], corner[1]]).mean() < 3
    centre = (slice(100, 156), slice(100, 156))
    assert np.abs(frames[:, centre[0], centre[1]].astype(int) - source[:, centre[0], centre[1]]).mean() > 5
    # a frame past the video's end, or a still image with --reference-frame, is refused in one line
    assert cli(["sample", "--image", str(video), "--reference-frame", "500", "--audio", str(video),
                "--out", str(tmp_path / "x.mp4"), "--no-progress"]) == 2
    assert f"--reference-frame 500 must be below {real_corpus.frames}" in capsys.readouterr().err
