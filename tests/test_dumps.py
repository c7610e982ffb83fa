"""HDF5 dump round trip and the checks that refuse a bad dump."""

import h5py
import numpy as np
import pytest

from sslsteal.dumps import DumpError, read_dump, write_dump


def make(tmp_path, n=7, d=5):
    rng = np.random.default_rng(0)
    path = tmp_path / "victim" / "queries.h5"
    representation = rng.normal(size=(n, d)).astype(np.float32)
    index = np.arange(10, 10 + n)
    meta = {"victim": "v1", "query_set": "q", "dataset": "synthetic", "split": "test"}
    write_dump(path, representation, index, meta)
    return path, representation, index


def test_round_trip(tmp_path):
    path, representation, index = make(tmp_path)
    dump = read_dump(path, expect={"victim": "v1", "query_set": "q"})
    np.testing.assert_array_equal(dump.representation.numpy(), representation)
    np.testing.assert_array_equal(dump.index, index)
    assert dump.meta["dim"] == 5 and dump.meta["n"] == 7
    assert dump.meta["dataset"] == "synthetic" and dump.meta["split"] == "test"
    assert not list(path.parent.glob(".*.tmp")), "temporary file left behind"


def test_wrong_victim_refused(tmp_path):
    path, *_ = make(tmp_path)
    with pytest.raises(DumpError, match="victim='v1', expected 'v2'"):
        read_dump(path, expect={"victim": "v2"})


def test_truncated_dump_names_the_file(tmp_path):
    path, *_ = make(tmp_path, n=2000, d=64)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DumpError, match=str(path)):
        read_dump(path)


def test_inconsistent_metadata_refused(tmp_path):
    path, *_ = make(tmp_path)
    with h5py.File(path, "a") as f:
        f.attrs["dim"] = 6
    with pytest.raises(DumpError, match="inconsistent"):
        read_dump(path)


def test_mismatched_shapes_refused_at_write(tmp_path):
    with pytest.raises(ValueError):
        write_dump(tmp_path / "x.h5", np.zeros((3, 2)), np.arange(4), {"victim": "v"})
