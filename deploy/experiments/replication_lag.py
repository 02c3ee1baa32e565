#!/usr/bin/env python3
"""Replication lag between two hier-server replicas of one store, as a client sees it: adds one
item at a time through the writer and times, from the writer's acknowledgement, how long until a
search on the reader finds it. Prints a JSON object with the samples' p50, p99 and max in ms.

Usage: PYTHONPATH=build/python replication_lag.py --writer HOST:PORT --reader HOST:PORT
       [--dim 128] [--samples 300] [--first-id N] [--token T]
"""

import argparse
import json
import math
import random
import sys
import time

import grpc

from hier.v1 import retrieval_pb2, retrieval_pb2_grpc, types_pb2


def random_point(rng, dim, c):
    """A point well inside the ball of curvature c."""
    direction = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in direction)) or 1.0
    radius = rng.uniform(0.0, 0.6 / math.sqrt(c))
    return [x / norm * radius for x in direction]


def percentile(sorted_values, fraction):
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writer", required=True)
    parser.add_argument("--reader", required=True)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--c", type=float, default=0.1)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--first-id", type=int, default=2_000_000_000)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between samples")
    parser.add_argument("--give-up", type=float, default=10.0, help="seconds per sample at most")
    parser.add_argument("--token", default="")
    args = parser.parse_args()

    metadata = [("authorization", "Bearer " + args.token)] if args.token else []
    writer = retrieval_pb2_grpc.RetrievalStub(grpc.insecure_channel(args.writer))
    reader = retrieval_pb2_grpc.RetrievalStub(grpc.insecure_channel(args.reader))
    rng = random.Random(7)
    lags_ms = []
    missed = 0
    for n in range(args.samples):
        item_id = args.first_id + n
        point = random_point(rng, args.dim, args.c)
        item = retrieval_pb2.NewItem(id=item_id, key=f"lag-{item_id}",
                                     vector=types_pb2.Vector(values=point))
        writer.AddItems(retrieval_pb2.AddItemsRequest(items=[item]), timeout=30,
                        metadata=metadata)
        acknowledged = time.monotonic()
        query = retrieval_pb2.SearchRequest(vector=types_pb2.Vector(values=point), k=1)
        while True:
            found = reader.Search(query, timeout=30, metadata=metadata)
            now = time.monotonic()
            if found.neighbours and found.neighbours[0].id == item_id:
                lags_ms.append((now - acknowledged) * 1e3)
                break
            if now - acknowledged > args.give_up:
                missed += 1
                break
        time.sleep(args.interval)
    lags_ms.sort()
    if not lags_ms:
        print(json.dumps({"samples": 0, "missed": missed}))
        return 1
    print(json.dumps({"samples": len(lags_ms), "missed": missed,
                      "p50_ms": percentile(lags_ms, 0.5), "p99_ms": percentile(lags_ms, 0.99),
                      "max_ms": lags_ms[-1]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
