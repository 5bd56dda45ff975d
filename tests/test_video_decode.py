"""Decoding, fps resampling and windows of pytal.video against hand-computed values."""
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("av")

from pytal.video import (FrameTransform, VideoError, iter_frames, iter_windows,  # noqa: E402
                         nearest_frame_indices, num_windows, probe_video, window_centres)
from pytal.video.synthetic import write_grey_ramp_video, write_synthetic_video  # noqa: E402


def decoded_sources(path, fps, step=8, info=None):
    """Which source frame each decoded frame of a grey-ramp video was."""
    return [int(round(f.mean() / step)) for f in iter_frames(path, fps=fps, info_out=info)]


def test_nearest_frame_indices_by_hand():
    # 10 fps -> 15 fps, 5 frames (0.0 .. 0.4 s, end 0.5 s): outputs at k/15 s for k = 0..7.
    times = [Fraction(j, 10) for j in range(5)]
    assert nearest_frame_indices(times, 15, Fraction(1, 2)) == [0, 1, 1, 2, 3, 3, 4, 4]
    # 25 fps -> 10 fps: source position k * 2.5, exact ties go to the earlier frame.
    times = [Fraction(j, 25) for j in range(30)]
    assert nearest_frame_indices(times, 10, Fraction(30, 25)) == [
        0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27]


def test_resampling_of_decoded_videos_two_frame_rates(tmp_path):
    down = write_grey_ramp_video(str(tmp_path / "down.mp4"), frames=30, fps=25)
    info = {}
    assert decoded_sources(down, 10, info=info) == [0, 2, 5, 7, 10, 12, 15, 17, 20, 22, 25, 27]
    assert info == {"native_fps": 25.0, "fps": 10.0, "frames": 12, "duration": 1.2}
    up = write_grey_ramp_video(str(tmp_path / "up.mp4"), frames=5, fps=10, step=40)
    info = {}
    assert decoded_sources(up, 15, step=40, info=info) == [0, 1, 1, 2, 3, 3, 4, 4]
    assert info["frames"] == 8 and info["duration"] == pytest.approx(0.5)
    # Without a target fps every frame is kept at the native rate.
    info = {}
    assert decoded_sources(down, None, info=info) == list(range(30))
    assert info["fps"] == 25.0 and info["duration"] == pytest.approx(1.2)


def test_ntsc_rate_matches_the_rule_on_exact_times(tmp_path):
    rate = Fraction(30000, 1001)
    path = write_grey_ramp_video(str(tmp_path / "ntsc.mp4"), frames=20, fps=rate)
    assert probe_video(path).native_fps == pytest.approx(29.97, abs=1e-3)
    want = nearest_frame_indices([j / rate for j in range(20)], 25, 20 / rate)
    assert len(want) == 17                       # ceil(20 / 29.97 * 25)
    assert decoded_sources(path, 25) == want


def test_frame_transform_resizes_short_side_and_centre_crops(tmp_path):
    t = FrameTransform(resize=(40,), crop=(32, 24))
    assert t.resized_size(48, 64) == (40, 53)      # 64 * 40 / 48 = 53.3
    assert t.resized_size(64, 48) == (53, 40)
    assert t.crop_box(40, 53) == (4, 14)
    assert FrameTransform((128, 171), (112, 112)).resized_size(48, 64) == (128, 171)
    path = write_synthetic_video(str(tmp_path / "v.mp4"), seconds=0.4, fps=25, width=64, height=48)
    frames = list(iter_frames(path, transform=t))
    assert len(frames) == 10
    assert all(f.shape == (32, 24, 3) and f.dtype == np.uint8 for f in frames)
    with pytest.raises(ValueError, match="crop"):
        FrameTransform((40,), (0, 3))




def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not a container " * 20)
    with pytest.raises(VideoError, match=r"broken\.mp4: not a readable video"):
        probe_video(str(bad))
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        list(iter_frames(str(bad)))
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        list(iter_frames(str(tmp_path / "missing.mp4")))


def test_file_without_video_stream(tmp_path):
    import av
    path = str(tmp_path / "audio_only.wav")
    with av.open(path, mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                           layout="mono")
        frame.rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    with pytest.raises(VideoError, match=r"audio_only\.wav: no video stream \(streams: audio\)"):
        list(iter_frames(path))


def test_zero_length_video(tmp_path):
    import av
    path = str(tmp_path / "empty.avi")
    with av.open(path, mode="w") as container:     # a video stream without a single frame
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    assert probe_video(path).width == 32
    with pytest.raises(VideoError, match=r"empty\.avi: the video has no frame \(zero length\)"):
        list(iter_frames(path))


def test_window_count_and_centres_by_hand():
    assert num_windows(100, 16, 4) == 22           # floor(84 / 4) + 1
    assert num_windows(16, 16, 4) == 1
    assert num_windows(19, 16, 4) == 1
    assert num_windows(20, 16, 4) == 2
    assert num_windows(3, 16, 4) == 1              # shorter than a window: one padded window
    assert num_windows(45, 16, 16) == 2
    np.testing.assert_allclose(window_centres(3, 16, 4, 25.0), [0.32, 0.48, 0.64])
    np.testing.assert_allclose(window_centres(2, 16, 16, 15.0), [8 / 15, 24 / 15])
    with pytest.raises(ValueError, match="stride"):
        num_windows(10, 4, 0)


def test_iter_windows_contents_and_padding():
    frames = [np.full((2, 2, 3), i, np.uint8) for i in range(11)]
    windows = list(iter_windows(iter(frames), num_frames=4, stride=3))
    assert len(windows) == num_windows(11, 4, 3) == 3
    assert [w[:, 0, 0, 0].tolist() for w in windows] == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    # stride larger than the window: frames between windows are skipped
    windows = list(iter_windows(iter(frames), num_frames=2, stride=5))
    assert [w[:, 0, 0, 0].tolist() for w in windows] == [[0, 1], [5, 6]]
    short = list(iter_windows(iter(frames[1:4]), num_frames=5, stride=2))
    assert len(short) == 1 and short[0].shape == (5, 2, 2, 3)
    assert short[0][:, 0, 0, 0].tolist() == [1, 2, 3, 0, 0]
    assert list(iter_windows(iter([]), num_frames=5, stride=2)) == []
