#!/usr/bin/env python3
"""The soak's own gRPC calls (deploy/experiments/soak.sh), each appending one JSON line per call
to OUT_DIR/ops.jsonl ({"op", "code", "t_start", "t_end", ...}) so that soak_check.py counts its
codes:

  check OUT_DIR   every id of the write ledger (OUT_DIR/ledger) read back with GetItem and
                  compared with what was acknowledged (soak_check.Ledger); the index's item count
                  (Stats) against the ids found; one line appended to OUT_DIR/checks.jsonl; exit 1
                  when an acknowledged write is lost or the check cannot finish
  swap OUT_DIR VERSION          LoadModel(VERSION, wait): a hot swap under the load
  train OUT_DIR JOB_FILE        StartTraining of a tiny job on the server's local Fashion-MNIST,
                                its id written to JOB_FILE, then WatchJob read to the end
  stall OUT_DIR JOB_FILE        N WatchJob streams on that job that are never read, held for S
                                seconds (the server's writer meets a full flow-control window),
                                then cancelled

Usage: PYTHONPATH=<build>/python soak_client.py COMMAND OUT_DIR ... --server HOST:PORT
Needs Debian's python3-grpcio and python3-protobuf. Every call has a deadline; every wait is
bounded.
"""

import argparse
import json
import pathlib
import sys
import time

import grpc

from hier.v1 import (models_pb2, models_pb2_grpc, retrieval_pb2, retrieval_pb2_grpc,
                     training_pb2, training_pb2_grpc)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import soak_check  # noqa: E402


def code_name(error):
    return error.code().name if isinstance(error, grpc.RpcError) else "UNKNOWN"


class Ops:
    """Appends one record per call to OUT_DIR/ops.jsonl."""

    def __init__(self, out):
        self.path = pathlib.Path(out) / "ops.jsonl"

    def record(self, op, code, t_start, count=1, **extra):
        line = dict(op=op, code=code, count=count, t_start=t_start, t_end=time.time(), **extra)
        with open(self.path, "a") as f:
            f.write(json.dumps(line) + "\n")


def check(args):
    """Reads every ledger id back (many GetItem calls in flight) and compares."""
    out = pathlib.Path(args.out)
    ops = Ops(out)
    ledger = soak_check.Ledger.from_dir(out / "ledger")
    stub = retrieval_pb2_grpc.RetrievalStub(grpc.insecure_channel(args.server))
    t_start = time.time()
    ids = sorted(ledger.state)
    present, codes, error = {}, {}, None
    try:
        for begin in range(0, len(ids), args.in_flight):
            chunk = ids[begin:begin + args.in_flight]
            futures = [stub.GetItem.future(retrieval_pb2.GetItemRequest(id=i),
                                           timeout=args.timeout) for i in chunk]
            for item_id, future in zip(chunk, futures):
                try:
                    future.result()
                    present[item_id] = True
                    codes["OK"] = codes.get("OK", 0) + 1
                except grpc.RpcError as e:
                    codes[code_name(e)] = codes.get(code_name(e), 0) + 1
                    if e.code() != grpc.StatusCode.NOT_FOUND:
                        raise
                    present[item_id] = False
        stats_start = time.time()
        try:
            stats = stub.Stats(retrieval_pb2.StatsRequest(), timeout=args.timeout)
            ops.record("stats", "OK", stats_start)
        except grpc.RpcError as e:
            ops.record("stats", code_name(e), stats_start)
            raise
    except grpc.RpcError as e:
        error = f"{code_name(e)}: {e.details()}"
    for code, count in codes.items():
        ops.record("get-item", code, t_start, count=count)
    result = {"t": time.time(), "label": args.label, "seconds": time.time() - t_start,
              "ids": len(ids), "acked_adds": ledger.acked["add"],
              "acked_deletes": ledger.acked["delete"]}
    if error:
        result["error"] = error
    else:
        result.update(soak_check.compare(ledger.state, present))
        result["found"] = sum(present.values())
        result["server_items"] = stats.items
        # Every item the server holds came from the ledger, so the index counts what GetItem found.
        result["index_mismatch"] = stats.items != result["found"]
    with open(out / "checks.jsonl", "a") as f:
        f.write(json.dumps(result) + "\n")
    summary = {k: (len(v) if isinstance(v, list) else v) for k, v in result.items()}
    print(json.dumps(summary))
    bad = error or result["lost"] or result["resurrected"] or result["index_mismatch"]
    return 1 if bad else 0


def swap(args):
    ops = Ops(args.out)
    stub = models_pb2_grpc.ModelsStub(grpc.insecure_channel(args.server))
    t_start = time.time()
    try:
        response = stub.LoadModel(models_pb2.LoadModelRequest(version=args.version, wait=True),
                                  timeout=args.timeout)
        ops.record("swap", "OK", t_start, version=args.version,
                   reembedded=response.reembedded_items)
        print(f"swap to {args.version}: {response.reembedded_items} items re-embedded in "
              f"{time.time() - t_start:.1f} s")
    except grpc.RpcError as e:
        ops.record("swap", code_name(e), t_start, version=args.version, details=e.details())
        print(f"swap to {args.version}: {code_name(e)}: {e.details()}")
    return 0


def tiny_job(steps):
    """A job of a few seconds on the server's default data set (Fashion-MNIST under its data
    roots), as the end-to-end tests start them; log_every 1 gives a progress event per step."""
    return training_pb2.TrainingConfig(epochs=1, steps_per_epoch=steps, test_limit=200, emb=16,
                                       num_proxies=16, topk=8, batch_size=40, ipc=4, threads=1,
                                       log_every=1)


def train(args):
    ops = Ops(args.out)
    stub = training_pb2_grpc.TrainingStub(grpc.insecure_channel(args.server))
    t_start = time.time()
    try:
        job = stub.StartTraining(training_pb2.StartTrainingRequest(
            name=args.name, config=tiny_job(args.steps)), timeout=30)
        ops.record("start-training", "OK", t_start, job=job.id)
    except grpc.RpcError as e:
        ops.record("start-training", code_name(e), t_start, details=e.details())
        print(f"StartTraining: {code_name(e)}: {e.details()}")
        return 0
    pathlib.Path(args.job_file).write_text(job.id + "\n")
    watch_start = time.time()
    events, state = 0, None
    try:
        for event in stub.WatchJob(training_pb2.WatchJobRequest(id=job.id), timeout=args.timeout):
            events += 1
            state = event.job.state
        ops.record("watch", "OK", watch_start, events=events)
    except grpc.RpcError as e:
        ops.record("watch", code_name(e), watch_start, events=events, details=e.details())
    # The job's end, read again (the watch may have been cut by a restart).
    deadline = time.time() + args.timeout
    while time.time() < deadline:
        try:
            job = stub.GetJob(training_pb2.GetJobRequest(id=job.id), timeout=10)
            state = job.state
            if state not in (training_pb2.JOB_STATE_QUEUED, training_pb2.JOB_STATE_RUNNING):
                break
        except grpc.RpcError:
            pass
        time.sleep(1)
    name = training_pb2.JobState.Name(state).replace("JOB_STATE_", "") if state else "UNKNOWN"
    ops.record("training-job", name, t_start, job=job.id, events=events, error=job.error)
    print(f"job {job.id}: {name} after {time.time() - t_start:.1f} s, {events} events watched")
    return 0


def stall(args):
    ops = Ops(args.out)
    job_file = pathlib.Path(args.job_file)
    deadline = time.time() + 30
    while not job_file.exists() and time.time() < deadline:
        time.sleep(0.2)
    if not job_file.exists():
        print("stall: no job to watch")
        return 1
    job_id = job_file.read_text().strip()
    # grpc's Python client asks for a message only when the iterator is advanced, so the
    # server's writes stop once the stream's flow-control window is full: a small window (and no
    # BDP probing to grow it) makes that happen after a few events rather than 64 KiB.
    channel = grpc.insecure_channel(args.server, options=[
        ("grpc.http2.lookahead_bytes", args.window), ("grpc.http2.bdp_probe", 0)])
    stub = training_pb2_grpc.TrainingStub(channel)
    t_start = time.time()
    calls = [stub.WatchJob(training_pb2.WatchJobRequest(id=job_id), timeout=args.hold + 60)
             for _ in range(args.streams)]
    time.sleep(args.hold)
    for call in calls:
        call.cancel()
    for call in calls:
        ops.record("watch-stalled", call.code().name, t_start, job=job_id)
    channel.close()
    print(f"stall: {args.streams} unread WatchJob streams held {args.hold:.0f} s: "
          f"{sorted(c.code().name for c in calls)}")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check")
    p.add_argument("out")
    p.add_argument("--label", default="", help="why the check runs (e.g. after-restart)")
    p.add_argument("--in-flight", type=int, default=256)
    p.add_argument("--timeout", type=float, default=30.0)
    p = sub.add_parser("swap")
    p.add_argument("out")
    p.add_argument("version")
    p.add_argument("--timeout", type=float, default=300.0)
    p = sub.add_parser("train")
    p.add_argument("out")
    p.add_argument("job_file")
    p.add_argument("--name", default="soak")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--timeout", type=float, default=300.0)
    p = sub.add_parser("stall")
    p.add_argument("out")
    p.add_argument("job_file")
    p.add_argument("--streams", type=int, default=8)
    p.add_argument("--hold", type=float, default=45.0)
    p.add_argument("--window", type=int, default=1024, help="bytes the reader lets through")
    for p in sub.choices.values():
        p.add_argument("--server", required=True)
    args = parser.parse_args()
    return {"check": check, "swap": swap, "train": train, "stall": stall}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
