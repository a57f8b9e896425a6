import os
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import av
import numpy as np
import pytest

from detector.errors import SourceError
from detector.video.file import SampleMode, VideoSource

TZ = ZoneInfo("Asia/Shanghai")


def gapped_video(path: Path, creation_time: str | None = None) -> Path:
    """10 fps for 5 s, then nothing for 10 s, then 5 s more: a camera that dropped out."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    with av.open(str(path), "w") as container:
        if creation_time:
            container.metadata["creation_time"] = creation_time
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        times = [i / 10 for i in range(50)] + [15 + i / 10 for i in range(50)]
        for t in times:
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts, frame.time_base = round(t * 1000), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_samples_at_fps_with_times_from_pts(shared: Path) -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=TZ)
    source = VideoSource(shared / "videos" / "vtest.avi", tz=TZ, fps=2, start=start)
    frames = list(source)
    assert len(frames) == 159 and source.report.frames_sampled == 159
    assert [f.pts_s for f in frames[:3]] == [0.0, 0.5, 1.0]
    assert frames[10].time == start + timedelta(seconds=5)
    assert frames[0].image.shape == (576, 768, 3)


def test_gap_in_stream_shows_in_times(tmp_path: Path) -> None:
    frames = list(VideoSource(gapped_video(tmp_path / "gap.mp4"), tz=TZ, fps=1, start=datetime(2026, 1, 1)))
    times = [f.pts_s for f in frames]
    assert times[:5] == pytest.approx([0, 1, 2, 3, 4])
    assert times[5] == pytest.approx(15.0)  # not 5.0: timestamps, not frame counts
    assert frames[0].time.tzinfo == TZ  # a naive --start is read in the camera's time zone


def test_keyframes_mode_decodes_only_keyframes(videos) -> None:
    source = VideoSource(videos["bikes_20s"], tz=TZ, fps=2, mode=SampleMode.KEYFRAMES, start=datetime(2026, 1, 1))
    times = [f.pts_s for f in source]
    assert times == pytest.approx([2.0 * i for i in range(10)])  # a keyframe every 2 s


def test_start_time_from_metadata_then_mtime(tmp_path: Path) -> None:
    tagged = gapped_video(tmp_path / "tagged.mp4", creation_time="2026-11-20T02:00:00.000000Z")
    assert VideoSource(tagged, tz=TZ).start_time == datetime(2026, 11, 20, 10, 0, tzinfo=TZ)
    plain = gapped_video(tmp_path / "plain.mp4")
    os.utime(plain, (1_800_000_000, 1_800_000_000))
    source = VideoSource(plain, tz=TZ)
    expected = datetime.fromtimestamp(1_800_000_000, tz=UTC) - timedelta(seconds=source.report.duration_s)
    assert source.start_time == expected and source.start_time.tzinfo == TZ


def test_unreadable_inputs(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="video not found"):
        VideoSource(tmp_path / "missing.mp4", tz=TZ)
    with pytest.raises(SourceError, match="not a readable file"):
        VideoSource(tmp_path, tz=TZ)
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    with pytest.raises(SourceError, match="cannot be read as a video"):
        VideoSource(text, tz=TZ)


@pytest.mark.parametrize("codec", ["libx264", "libx265"])
def test_refs_mode_skips_unreferenced_frames_and_keeps_the_rate(tmp_path: Path, shared: Path, codec: str) -> None:
    from scripts.make_clips import make_clip

    clip = make_clip(shared / "videos" / "vtest.avi", tmp_path / "clip.mp4", codec=codec, width=320, height=180,
                     seconds=10)
    full = VideoSource(clip, tz=TZ, fps=2, mode=SampleMode.FPS, start=datetime(2026, 1, 1))
    refs = VideoSource(clip, tz=TZ, fps=2, mode=SampleMode.REFS, start=datetime(2026, 1, 1))
    full_times, refs_times = [f.pts_s for f in full], [f.pts_s for f in refs]
    assert full.report.frames_decoded >= 245  # 25 fps for about 10 s
    assert refs.report.frames_decoded < 0.7 * full.report.frames_decoded  # veryfast presets use B-frames
    assert len(refs_times) == len(full_times) == 20  # still 2 fps: x265's B-sliced P-frames are kept
    assert all(abs(r - f) <= 0.2 for r, f in zip(refs_times, full_times, strict=True))
    assert VideoSource(clip, tz=TZ, fps=2, mode=SampleMode.AUTO).mode == SampleMode.REFS
    assert VideoSource(clip, tz=TZ, fps=0.5, mode=SampleMode.AUTO).mode == SampleMode.KEYFRAMES


def test_mpeg_ts_whose_timestamps_wrap_is_read_whole(tmp_path: Path, shared: Path) -> None:
    """33-bit MPEG-TS timestamps wrap every 26.5 h; a recording across the wrap is whole, not 'truncated'."""
    import subprocess

    wrapped = tmp_path / "wrap.ts"
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-t", "12", "-i", str(shared / "videos" / "vtest.avi"),
                    "-vf", "scale=384:-2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-f", "mpegts",
                    "-output_ts_offset", str(2**33 / 90000 - 8.7), str(wrapped)], check=True)
    for mode in (SampleMode.AUTO, SampleMode.REFS, SampleMode.FPS):
        source = VideoSource(wrapped, tz=TZ, fps=2.0, mode=mode)
        times = [frame.pts_s for frame in source]
        assert len(times) == 24 and times[-1] == pytest.approx(11.5), (mode, times)
        assert source.report.problems == [], mode


def test_the_default_rate_follows_the_shortest_dwell_and_keyframes_suffice_for_it(tmp_path: Path) -> None:
    from detector.config.camera import CameraConfig
    from detector.video.sampling import fps_for_dwell, sampling_rate

    camera = CameraConfig.model_validate({"camera": {"id": "c", "timezone": "UTC"},
                                          "rules": {"garbage": {"min_dwell_s": 120}, "bike": {"min_dwell_s": 60}}})
    fps, why = sampling_rate(camera, None)
    assert fps == pytest.approx(1 / 3) and "bike 60 s" in why
    assert sampling_rate(camera, 2.0) == (2.0, "2 fps (--fps)")
    assert fps_for_dwell(5) == 2.0  # capped
    video = tmp_path / "gop2.mp4"  # a keyframe every 2 s: enough for one sample every 3 s
    with av.open(str(video), mode="w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"preset": "ultrafast", "g": "10"}
        rng = np.random.default_rng(0)
        for _ in range(60):
            image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    source = VideoSource(video, tz=TZ, fps=fps, mode=SampleMode.AUTO)
    times = [f.pts_s for f in source]
    assert source.report.mode == "keyframes" and source.report.keyframe_gap_s == pytest.approx(2.0)
    assert times == pytest.approx([0.0, 4.0, 6.0, 10.0])  # the first keyframe at or after each 3 s tick
