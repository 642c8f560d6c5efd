"""Running a study on a real dask.distributed cluster gives the process pool's results."""

from __future__ import annotations

import io
import json

import dask
import pytest
from dask.distributed import LocalCluster

from studies import runner


def test_dask_cluster_writes_the_same_results_csv_as_the_process_pool(tmp_path):
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      host="127.0.0.1", dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")  # a real scheduler on loopback
        (on_dask,) = runner.run(["precision_sweep"], out=tmp_path / "dask", quick=True,
                                dask=address, stream=io.StringIO())
    (on_pool,) = runner.run(["precision_sweep"], out=tmp_path / "pool", quick=True, jobs=2,
                            stream=io.StringIO())
    assert on_dask.computed == on_pool.computed == len(on_pool.records) > 10
    assert not on_dask.failures
    dask_csv = (tmp_path / "dask" / "precision_sweep" / "results.csv").read_text()
    assert dask_csv == (tmp_path / "pool" / "precision_sweep" / "results.csv").read_text()
    run = json.loads((tmp_path / "dask" / "precision_sweep" / "run.json").read_text())
    assert run["config"]["dask"] == address


def test_dask_address_that_does_not_answer_fails_clearly():
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(OSError, match="cannot reach the dask scheduler at "
                                         "'tcp://127.0.0.1:9'.*`dask scheduler`"), \
            runner.make_executor(dask="tcp://127.0.0.1:9"):
        pass
