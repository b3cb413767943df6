"""Collective cost models against hand-computed alpha-beta times."""

import pytest

from hwmodels.collectives import all_gather_time, all_reduce_time, all_to_all_time, send_recv_time


def test_ring_all_reduce_by_hand():
    # 8 GPUs, 64 MB at 450 GB/s, 3 us: ring = 2*7/8*64e6/450e9 + 14*3e-6; tree = 2*64e6/450e9 + 6*3e-6
    ring = 2 * 7 / 8 * 64e6 / 450e9 + 14 * 3e-6
    tree = 2 * 64e6 / 450e9 + 6 * 3e-6
    assert float(all_reduce_time(64e6, 8, 450e9, 3e-6)) == pytest.approx(min(ring, tree))


def test_small_messages_prefer_tree():
    ring = 2 * 7 / 8 * 1e3 / 450e9 + 14 * 3e-6
    assert float(all_reduce_time(1e3, 8, 450e9, 3e-6)) < ring


def test_single_device_costs_nothing():
    for fn in (all_reduce_time, all_gather_time, all_to_all_time, send_recv_time):
        assert float(fn(1e9, 1, 1e9, 1e-6)) == 0.0


def test_all_to_all_and_send_recv():
    assert float(all_to_all_time(8e6, 4, 100e9, 2e-6)) == pytest.approx(3 / 4 * 8e6 / 100e9 + 3 * 2e-6)
    assert float(send_recv_time(1e6, 2, 50e9, 5e-6)) == pytest.approx(1e6 / 50e9 + 5e-6)
