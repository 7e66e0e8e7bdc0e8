"""pyzen.utils.data: datasets, batching, shuffling reproducibility, random_split, collation."""
from __future__ import annotations

from collections import namedtuple

import numpy as np
import pytest

import pyzen
from pyzen.utils.data import (
    BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler, Subset, TensorDataset, default_collate,
    random_split,
)
from conftest import to_np


def make_dataset(n=10):
    x = pyzen.tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2))
    y = pyzen.arange(n)
    return TensorDataset(x, y)


def test_tensor_dataset():
    ds = make_dataset(5)
    assert len(ds) == 5
    x, y = ds[3]
    assert to_np(x).tolist() == [6.0, 7.0] and y.item() == 3
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(pyzen.zeros(3), pyzen.zeros(4))


@pytest.mark.parametrize("n, batch, drop_last, sizes", [(10, 3, False, [3, 3, 3, 1]), (10, 3, True, [3, 3, 3]), (9, 3, False, [3, 3, 3]), (2, 5, True, [])])
def test_batching_and_drop_last(n, batch, drop_last, sizes):
    loader = DataLoader(make_dataset(n), batch_size=batch, drop_last=drop_last)
    assert len(loader) == len(sizes)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == sizes
    seen = [i for _, y in batches for i in y.tolist()]
    assert seen == list(range(sum(sizes)))  # sequential order without shuffle
    for x, y in batches:
        assert x.dtype == pyzen.float32 and x.shape == (len(y), 2) and y.dtype == pyzen.int64
        np.testing.assert_array_equal(to_np(x), np.stack([[2 * i, 2 * i + 1] for i in y.tolist()]).astype(np.float32))


def order(loader):
    return [i for _, y in loader for i in y.tolist()]


def test_shuffle_is_reproducible_with_manual_seed():
    loader = DataLoader(make_dataset(20), batch_size=4, shuffle=True)
    pyzen.manual_seed(0)
    e1, e2 = order(loader), order(loader)
    pyzen.manual_seed(0)
    assert order(loader) == e1 and order(loader) == e2
    assert sorted(e1) == list(range(20)) and sorted(e2) == list(range(20))
    assert e1 != e2 and e1 != list(range(20))
    pyzen.manual_seed(1)
    assert order(loader) != e1


def test_shuffle_with_own_generator():
    ds = make_dataset(16)
    a = DataLoader(ds, batch_size=5, shuffle=True, generator=pyzen.Generator(3))
    b = DataLoader(ds, batch_size=5, shuffle=True, generator=pyzen.Generator(3))
    pyzen.manual_seed(99)
    first = order(a)
    pyzen.manual_seed(12345)  # the global seed does not matter with an own generator
    assert order(b) == first and sorted(first) == list(range(16))


def test_random_split_sizes_and_disjointness():
    ds = make_dataset(10)
    parts = random_split(ds, [3, 3, 4], generator=pyzen.Generator(0))
    assert [len(p) for p in parts] == [3, 3, 4] and all(isinstance(p, Subset) for p in parts)
    idx = [i for p in parts for i in p.indices]
    assert sorted(idx) == list(range(10))
    assert parts[0][0][1].item() == parts[0].indices[0]
    again = random_split(ds, [3, 3, 4], generator=pyzen.Generator(0))
    assert [p.indices for p in again] == [p.indices for p in parts]
    # Fractions: floors, then the remainder one by one from the first split.
    assert [len(p) for p in random_split(make_dataset(11), [0.5, 0.5])] == [6, 5]
    assert [len(p) for p in random_split(make_dataset(10), [0.25, 0.25, 0.5])] == [3, 2, 5]  # floors 2, 2, 5
    assert [len(p) for p in random_split(make_dataset(8), [1 / 3, 1 / 3, 1 / 3])] == [3, 3, 2]  # floors 2, 2, 2
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(ds, [3, 3])
    with pytest.raises(ValueError):
        random_split(ds, [-1, 11])


def test_default_collate_structures():
    Point = namedtuple("Point", ["x", "y"])
    batch = [
        {"t": pyzen.tensor([1.0, 2.0]), "n": 1, "f": 0.5, "b": True, "s": "a", "pair": (pyzen.tensor(1), 2), "p": Point(1, 2.0), "a": np.array([1, 2])},
        {"t": pyzen.tensor([3.0, 4.0]), "n": 2, "f": 1.5, "b": False, "s": "b", "pair": (pyzen.tensor(3), 4), "p": Point(3, 4.0), "a": np.array([3, 4])},
    ]
    out = default_collate(batch)
    assert to_np(out["t"]).tolist() == [[1.0, 2.0], [3.0, 4.0]] and out["t"].dtype == pyzen.float32
    assert out["n"].dtype == pyzen.int64 and out["n"].tolist() == [1, 2]
    assert out["f"].dtype == pyzen.float64 and out["f"].tolist() == [0.5, 1.5]
    assert out["b"].dtype == pyzen.bool and out["b"].tolist() == [True, False]
    assert out["s"] == ["a", "b"]
    assert isinstance(out["pair"], list) and out["pair"][0].tolist() == [1, 3] and out["pair"][1].tolist() == [2, 4]
    assert isinstance(out["p"], Point) and out["p"].x.tolist() == [1, 3] and out["p"].y.tolist() == [2.0, 4.0]
    assert out["a"].dtype == pyzen.int64 and out["a"].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([(1, 2), (3,)])
    with pytest.raises(TypeError, match="object"):
        default_collate([object()])


class Squares(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        if not 0 <= i < 5:
            raise IndexError(i)
        return {"x": i, "y": float(i * i)}


def test_loader_over_custom_dataset_and_options():
    batches = list(DataLoader(Squares(), batch_size=2))
    assert [b["x"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert [b["y"].tolist() for b in batches] == [[0.0, 1.0], [4.0, 9.0], [16.0]]
    assert list(DataLoader(Squares(), batch_size=None))[2] == {"x": 2, "y": 4.0}
    custom = DataLoader(Squares(), batch_size=3, collate_fn=lambda items: [d["x"] for d in items])
    assert list(custom) == [[0, 1, 2], [3, 4]]
    sampler_loader = DataLoader(Squares(), batch_size=2, sampler=[4, 3, 2, 1, 0])
    assert [b["x"].tolist() for b in sampler_loader] == [[4, 3], [2, 1], [0]]
    bs_loader = DataLoader(Squares(), batch_sampler=BatchSampler(SequentialSampler(range(5)), 4, drop_last=True))
    assert len(bs_loader) == 1 and [b["x"].tolist() for b in bs_loader] == [[0, 1, 2, 3]]
    assert len(RandomSampler(range(7), generator=pyzen.Generator(1))) == 7
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=pyzen.Generator(1)))
    assert len(drawn) == 50 and set(drawn) <= {0, 1, 2}


def test_loader_errors():
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(Squares(), num_workers=2)
    with pytest.raises(ValueError, match="mutually exclusive"):
        DataLoader(Squares(), shuffle=True, sampler=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(Squares(), batch_size=0)
    with pytest.raises(TypeError, match="Generator"):
        list(DataLoader(Squares(), shuffle=True, generator=np.random.default_rng(0)))


class Stream(pyzen.utils.data.IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))


def test_iterable_dataset():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]
    with pytest.raises(TypeError):
        len(DataLoader(Stream(3), batch_size=2))  # the stream has no length
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Stream(3), shuffle=True)
