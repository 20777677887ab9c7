"""Media I/O: images, audio and video in and out, streaming where files can be long.

- images: :func:`read_image` -> uint8 RGB [h, w, 3]; :func:`write_image`
- audio: :func:`read_audio` / :func:`iter_audio` -> mono float32 at 16 kHz; :func:`write_audio` (wav, flac)
- video: :func:`iter_video_frames` / :func:`read_video_frames` at a requested fps; :func:`probe_video`
- mp4 out: :class:`VideoWriter` (streaming) and :func:`write_video`, H.264 + AAC, frame-accurate
"""

from styletalker_core.media.audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioInfo, iter_audio, probe_audio, read_audio, write_audio
from styletalker_core.media.errors import MediaError, NoAudioTrackError, NoVideoTrackError
from styletalker_core.media.image import IMAGE_SUFFIXES, read_image, write_image
from styletalker_core.media.video_reader import VIDEO_SUFFIXES, VideoInfo, iter_video_frames, probe_video, read_video_frames
from styletalker_core.media.video_writer import VideoWriter, write_video

__all__ = [
    "AUDIO_SUFFIXES",
    "IMAGE_SUFFIXES",
    "SAMPLE_RATE",
    "VIDEO_SUFFIXES",
    "AudioInfo",
    "MediaError",
    "NoAudioTrackError",
    "NoVideoTrackError",
    "VideoInfo",
    "VideoWriter",
    "iter_audio",
    "iter_video_frames",
    "probe_audio",
    "probe_video",
    "read_audio",
    "read_image",
    "read_video_frames",
    "write_audio",
    "write_image",
    "write_video",
]
