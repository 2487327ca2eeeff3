"""The forward's scatter of per-synapse delayed arrivals, alone: what one arrival costs to add into a ring of
pending steps, and to put in its target's list, for rings that fit the first-level cache and rings that do
not.

A source's row of arrivals (one per target, each with its own delay of K whole steps) is added into the
ring's cells (a target's two modes and its bound, float32, side by side), slot (sender's step + K) mod R,
as the step kernels' deposit loop does. "list per arrival" also writes each arrival's list entry (time,
connection, weight, link) in the same loop and counts the pool's next entry per arrival (the kernels'
way until the seventh session); "list along the row" takes the row's entries as one block, writes them
first, in a loop of their own, and only links them in the scatter loop (the kernels' way since). The
rows' slots are random (uniform delays), so the number of targets per row sets how much of the ring a row
touches: 256 targets x 66 slots (the SHD delay benchmark: up to 64 ms delays at dt = 1 ms) is about
200 KB, 16 targets about 12 KB (a tile that fits the first-level cache).

    python benchmarks/ring_scatter.py
    python benchmarks/ring_scatter.py --arrivals 10000000 --repeats 5
"""

import argparse
import time

import numba
import numpy as np


def make_scatter(lists):
    """Rows of T arrivals into the ring RZ (R slots x T targets x 3): ``lists`` 0 none, 1 an entry written
    per arrival, 2 the row's entries written along the row first; a constant of the compiled loop, as in the
    kernels (each case compiled on its own)."""

    @numba.njit
    def scatter(RZ, K, sent, vals, R, T, times, pool_t, pool_c, pool_w, pool_next, heads):
        e = 0
        size = pool_t.shape[0]
        for s in range(sent.shape[0]):
            sb = sent[s]
            v = vals[s]
            row = s % K.shape[0]
            if lists == 2:  # the row's entries in one block, written along the row
                if e + T > size:
                    e = 0
                for m in range(T):
                    pool_t[e + m] = times[m]
                    pool_c[e + m] = 1
                    pool_w[e + m] = v
            for m in range(T):
                slot = sb + K[row, m]
                if slot >= R:
                    slot -= R
                at = slot * T + m
                RZ[3 * at] += v
                RZ[3 * at + 1] += v * 0.5
                RZ[3 * at + 2] += v * 0.25
                if lists == 1:  # an entry per arrival, the pool's next entry counted (and wrapped) each time
                    pool_t[e] = times[m]
                    pool_c[e] = 1
                    pool_w[e] = v
                    pool_next[e] = heads[at]
                    heads[at] = e
                    e += 1
                    if e == size:
                        e = 0
                elif lists == 2:
                    pool_next[e + m] = heads[at]
                    heads[at] = e + m
            if lists == 2:
                e += T

    return scatter


SCATTER = {lists: make_scatter(lists) for lists in (0, 1, 2)}


def time_case(arrivals, R, T, lists, repeats, seed):
    """Best time per arrival [ns] of ``arrivals`` arrivals in rows of T targets, ring of R slots."""
    rng = np.random.default_rng(seed)
    RZ = np.zeros(R * T * 3, np.float32)
    K = rng.integers(0, R - 1, (512, T))  # each source's row of whole-step delays
    n_rows = max(arrivals // T, 1)
    sent = rng.integers(0, R, n_rows)  # the sender's step, as a slot
    vals = rng.random(n_rows)
    size = 66 * 10 * 256  # the pool of the delay benchmark: the arrivals of a window of 66 steps
    pool = (np.zeros(size), np.zeros(size, np.int32), np.zeros(size), np.zeros(size, np.int32))
    heads = np.full(R * T, -1, np.int32)
    times = rng.random(T)
    scatter = SCATTER[lists]
    args = (RZ, K, sent, vals, R, T, times, *pool, heads)
    scatter(*args)  # compile and warm up
    best = np.inf
    for _ in range(repeats):
        t = time.perf_counter()
        scatter(*args)
        best = min(best, time.perf_counter() - t)
    return 1e9 * best / (n_rows * T)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arrivals", type=int, default=2_560_000, help="arrivals per run (SHD: 10,000 spikes x 256)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    names = {0: "ring only", 1: "list per arrival", 2: "list along the row"}
    print("lists | ring slots | targets per row | ring KB | ns/arrival")
    for lists in (0, 1, 2):
        for R, T in ((66, 256), (66, 16), (130, 16), (130, 256)):
            ns = time_case(args.arrivals, R, T, lists, args.repeats, args.seed)
            print(f"{names[lists]} | {R} | {T} | {R * T * 12 / 1024:.0f} | {ns:.2f}")


if __name__ == "__main__":
    main()
