"""Phase 1 engines: run `detect_file` on many files and yield the results as they finish.

Local worker processes on this machine (spawned, each with its share of the cores), or one Ray task
per file on a cluster (half a GPU each where it has GPUs, so decoding overlaps inference).
"""

from __future__ import annotations

import os
from collections.abc import Generator
from dataclasses import replace

from detector.apps.rescan.detect import FileJob, FileResult, detect_file, detector_for


def auto_workers() -> int:
    """Local worker processes: one per GPU (two, to overlap decoding), else one per 4 cores (torch uses them)."""
    try:
        import torch

        gpus = torch.cuda.device_count()
    except Exception:  # no usable torch CUDA build
        gpus = 0
    if gpus:
        return 2 * gpus
    return max(1, (os.cpu_count() or 1) // 4)


def run_local(jobs: list[FileJob], workers: int) -> Generator[FileResult, None, None]:
    if not jobs:
        return
    if workers <= 1:
        import torch

        before = torch.get_num_threads()
        # Every core for torch (ultralytics would leave it one thread on small machines); restored after.
        detector = detector_for(jobs[0].card, jobs[0].weights, os.cpu_count() or 1, jobs[0].runtime)
        try:
            for job in jobs:
                yield detect_file(job, detector)
        finally:
            torch.set_num_threads(before)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // workers)
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(detect_file, replace(job, threads=threads)) for job in jobs]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # files not started are not waited for


def run_ray(jobs: list[FileJob], address: str | None, cpus_per_task: float = 1.0) -> Generator[FileResult, None, None]:
    """Each file a Ray task (half a GPU each where the cluster has GPUs, so decoding overlaps inference)."""
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    if not jobs:
        return
    gpus = ray.cluster_resources().get("GPU", 0)
    task = ray.remote(num_cpus=cpus_per_task, num_gpus=0.5 if gpus else 0, max_retries=2)(_ray_detect)
    pending = [task.remote(job) for job in jobs]
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def _ray_detect(job: FileJob) -> FileResult:
    # Ray sets OMP_NUM_THREADS to the task's CPUs.
    return detect_file(replace(job, threads=max(1, int(os.environ.get("OMP_NUM_THREADS", "1")))))
