#!/usr/bin/env python3
"""Searches hier-server for the images most similar to each image file given.

The modules under hier/v1 are generated from proto/hier/v1 at build time (<build>/python); put
that folder on PYTHONPATH. Uses Debian's python3-grpcio and python3-protobuf only.

    PYTHONPATH=build/python python3 client/python/search_images.py --server localhost:50051 \
        --k 5 shirt.png shoe.png
"""
import argparse
import json
import sys

import grpc

from hier.v1 import retrieval_pb2, retrieval_pb2_grpc


def search(stub, path, k, label, timeout):
    """The neighbours of the image at `path`, nearest first, as dictionaries."""
    with open(path, "rb") as image:
        request = retrieval_pb2.SearchRequest(image=image.read(), k=k, label=label)
    response = stub.Search(request, timeout=timeout)
    return {
        "query": path,
        "model_version": response.model_version,
        "neighbours": [
            {"id": n.id, "key": n.key, "label": n.label, "distance": n.distance}
            for n in response.neighbours
        ],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--server", default="localhost:50051")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--label", default="", help="only items with this label")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    parser.add_argument("--json", action="store_true", help="one JSON object per image")
    args = parser.parse_args()

    with grpc.insecure_channel(args.server) as channel:
        stub = retrieval_pb2_grpc.RetrievalStub(channel)
        for path in args.images:
            try:
                result = search(stub, path, args.k, args.label, args.timeout)
            except grpc.RpcError as error:
                print(f"{path}: {error.code().name}: {error.details()}", file=sys.stderr)
                return 1
            if args.json:
                print(json.dumps(result))
                continue
            print(f"{path} (model {result['model_version']})")
            for rank, n in enumerate(result["neighbours"], 1):
                print(f"  {rank:2d}  id {n['id']:<8d} {n['label']:<14s} {n['distance']:.6f}  {n['key']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
