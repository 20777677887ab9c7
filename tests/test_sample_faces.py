"""Reference and motion-video preprocessing of the sampling engine on a real photo (scikit-image's astronaut)."""

from __future__ import annotations

import numpy as np
import pytest

from styletalker_core.media import write_image, write_video
from styletalker_core.sample import InputError
from styletalker_core.sample.faces import FaceAligner, prepare_motion_frames, prepare_reference, resize_square

skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def aligner() -> FaceAligner:
    return FaceAligner()


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return skimage_data.astronaut()  # 512 x 512, one face, and a helmet the detector also fires on


def moving_video(path, photo: np.ndarray, frames: int = 10, blank: int | None = None):
    """The photo moving right 5 px and down 3 px per frame (edges extended); frame ``blank`` grey."""
    big = np.pad(photo, ((64, 64), (64, 64), (0, 0)), mode="edge")
    video = np.stack([big[64 - 3 * k : 576 - 3 * k, 64 - 5 * k : 576 - 5 * k] for k in range(frames)])
    if blank is not None:
        video[blank] = 128
    write_video(path, video, crf=10)
    return path


def test_reference_is_aligned_on_the_face(tmp_path, aligner, photo):
    path = tmp_path / "photo.png"
    write_image(path, photo)
    face = prepare_reference(path, 64, True, aligner)
    assert face.shape == (64, 64, 3)
    # the crop is the face: the same photo shifted gives the same crop, unlike a plain resize
    shifted = tmp_path / "shifted.png"
    write_image(shifted, np.pad(photo, ((40, 0), (0, 40), (0, 0)), mode="edge")[:512, 40:])
    again = prepare_reference(shifted, 64, True, aligner)
    assert np.abs(face.astype(float) - again).mean() < 6.0
    plain = prepare_reference(path, 64, False, aligner)
    assert np.array_equal(plain, resize_square(photo, 64)) and np.abs(plain.astype(float) - face).mean() > 20


def test_small_reference_is_found_on_an_enlarged_copy(tmp_path, aligner, photo):
    from PIL import Image

    small = tmp_path / "small.png"
    write_image(small, np.asarray(Image.fromarray(photo).resize((96, 96), Image.Resampling.LANCZOS)))
    assert aligner.analyzer.faces(np.asarray(Image.open(small))) == [], "too small for dlib's detector"
    full = tmp_path / "full.png"
    write_image(full, photo)
    face, expected = prepare_reference(small, 32, True, aligner), prepare_reference(full, 32, True, aligner)
    assert np.abs(face.astype(float) - expected).mean() < 12.0


def test_motion_video_crops_follow_one_face(tmp_path, aligner, photo):
    video = moving_video(tmp_path / "moving.mp4", photo)
    crops = prepare_motion_frames(video, 64, True, aligner, fps=25).astype(float)
    assert crops.shape == (10, 64, 64, 3)
    middle = crops[2:8]  # away from the ends, where smoothing has all its neighbours
    assert np.abs(middle - middle[0]).mean() < 8.0, "the crop moves with the face"
    plain = prepare_motion_frames(video, 64, False, aligner, fps=25).astype(float)
    assert np.abs(plain[2:8] - plain[2]).mean() > 2 * np.abs(middle - middle[0]).mean()


def test_motion_frame_without_a_face_borrows_its_neighbours_landmarks(tmp_path, aligner, photo):
    video = moving_video(tmp_path / "gap.mp4", photo, blank=5)
    crops = prepare_motion_frames(video, 64, True, aligner, fps=25)
    assert crops.shape[0] == 10 and crops[5].std() < 3  # the grey frame is still there, cropped where the face was
    grey = tmp_path / "grey.mp4"
    write_video(grey, np.full((5, 96, 96, 3), 128, dtype=np.uint8))
    with pytest.raises(InputError, match=r"motion: .*grey\.mp4: no face found in any of its 5 frames"):
        prepare_motion_frames(grey, 64, True, aligner, fps=25)
