"""HDF5 dump round trip and the checks that refuse a bad dump."""

import h5py
import numpy as np
import pytest

from sslsteal.dumps import read_dump, write_dump
from sslsteal.errors import DumpError


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


def test_projection_and_views_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    index = np.arange(6)
    representation = rng.normal(size=(6, 4)).astype(np.float32)
    projection = rng.normal(size=(6, 3)).astype(np.float32)
    write_dump(tmp_path / "a.h5", representation, index, {"victim": "v", "query_set": "q"}, projection=projection)
    dump = read_dump(tmp_path / "a.h5")
    np.testing.assert_array_equal(dump.projection.numpy(), projection)
    assert dump.meta["projection_dim"] == 3
    views = rng.normal(size=(2, 6, 4)).astype(np.float32)
    write_dump(tmp_path / "v.h5", views, index, {"victim": "v", "query_set": "q"})
    dump = read_dump(tmp_path / "v.h5")
    assert dump.representation.shape == (2, 6, 4) and dump.meta["n_views"] == 2 and dump.projection is None


def test_non_finite_projection_refused(tmp_path):
    projection = np.full((3, 2), np.nan, dtype=np.float32)
    write_dump(tmp_path / "a.h5", np.zeros((3, 4)), np.arange(3), {"victim": "v", "query_set": "q"}, projection=projection)
    with pytest.raises(DumpError, match="non-finite"):
        read_dump(tmp_path / "a.h5")
