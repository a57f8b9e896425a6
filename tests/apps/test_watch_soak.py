"""Soak (slow, `--run-slow`): 4 cameras on a real RTSP server for 10 minutes; memory must not creep."""

from __future__ import annotations

import argparse

import pytest

from scripts import watch_bench


@pytest.mark.slow
def test_four_cameras_for_ten_minutes_keep_up_and_do_not_grow(shared, tmp_path):
    args = argparse.Namespace(cameras=4, seconds=600, fps=2.0, warmup=120, sample_s=10, outage_at=None,
                              outage_s=15, backoff_max=2.0, shared=shared, json=None)
    result = watch_bench.run(args)
    print({k: v for k, v in result.items() if k != "samples"})
    assert result["exit_code"] == 0 and result["stop_s"] < 10
    assert result["rss_growth_pct"] < 5, result["samples"]
    assert all(fps > 0.5 for fps in result["frames_per_s"].values()), result["frames_per_s"]
