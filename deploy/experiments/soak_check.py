#!/usr/bin/env python3
"""The soak's verdicts (deploy/experiments/soak.sh), kept apart from the gRPC calls so that they
are tested on their own (tests/deploy/soak_check_test.py):

* the write ledger: which ids must be present, which absent, which are unknown;
* the status codes: every (operation, code) pair against the faults that were active while the
  call ran (an operation may answer UNAVAILABLE only while the server is down, and so on);
* the server's resident memory, per server lifetime, after a warm-up.

Usage: soak_check.py report OUT_DIR [--warmup S] [--window S] [--min-span S] [--limit PCT]
prints the report (operations x codes, faults, writes, memory), writes OUT_DIR/soak.md and
OUT_DIR/verdict.json, and exits 1 when an acknowledged write was lost, a code was unexpected, the
server crashed, a check could not run or memory grew by the limit or more.

Files of OUT_DIR it reads (all written by soak.sh and soak_client.py):
  ledger/*.txt      hier-bench --ledger lines "<add|delete> <first id> <count> <CODE>", named
                    init.txt, then per round round-NNNN-add.txt, round-NNNN-add-full.txt (the
                    writer that fills the disk) and round-NNNN-delete.txt, read in that order
  rounds.jsonl      {"round", "t_start", "t_end", "burst"} per round of load
  bench/*.json      hier-bench results, named round-NNNN-<op>.json
  events.jsonl      {"event": kill|disk-full|restart|crash|..., "t_start", "t_end", ...}
  ops.jsonl         {"op", "code", "t_start", "t_end", ...} per call soak_client.py made
  checks.jsonl      one ledger check per line (soak_client.py check)
  rss.tsv           "<unix time> <lifetime> <pid> <rss bytes> <threads> [<malloc in use bytes>
                    <malloc free bytes>]" samples ("-" where the server's metrics gave none)
"""

import argparse
import collections
import json
import pathlib
import re
import statistics
import sys

PRESENT, ABSENT, UNKNOWN = "present", "absent", "unknown"

# ---------------------------------------------------------------------------------------------
# The ledger


def parse_ledger_line(line):
    """("add"|"delete", first id, count, code) from one ledger line."""
    op, first, count, code = line.split()
    if op not in ("add", "delete"):
        raise ValueError(f"ledger line {line!r}: unknown operation {op!r}")
    return op, int(first), int(count), code


def ledger_files(ledger_dir):
    """The ledger files in the order their writes happened: init, then round by round (the adds
    of round r before its deletes, which only remove ids of round r-1; every file of a round
    writes ids of its own)."""
    order = {"add": 0, "add-full": 1, "delete": 2}

    def key(path):
        if path.stem == "init":
            return (-1, 0)
        match = re.fullmatch(r"round-(\d+)-(add|add-full|delete)", path.stem)
        if not match:
            raise ValueError(f"unexpected ledger file {path.name}")
        return (int(match.group(1)), order[match.group(2)])
    return sorted(pathlib.Path(ledger_dir).glob("*.txt"), key=key)


class Ledger:
    """Each id's expected state from the writes in order: an acknowledged add makes it present,
    an acknowledged delete absent; a write that failed or was cut off (any code but OK) makes it
    unknown, since it may or may not have happened. A delete answered NOT_FOUND although every id
    of the call was acknowledged present is a lost write on its own (the store deletes nothing
    then, and says which id it lacks)."""

    def __init__(self):
        self.state = {}
        self.acked = collections.Counter()    # ("add"|"delete") -> ids acknowledged
        self.unknown = collections.Counter()  # ("add"|"delete") -> ids of failed calls
        self.calls = collections.Counter()    # (op, code) -> calls
        self.not_found_after_ack = []         # first ids of such delete calls

    def apply(self, op, first, count, code):
        ids = range(first, first + count)
        self.calls[(op, code)] += 1
        if code == "OK":
            self.acked[op] += count
            for i in ids:
                self.state[i] = PRESENT if op == "add" else ABSENT
            return
        self.unknown[op] += count
        if op == "delete" and code == "NOT_FOUND" and all(
                self.state.get(i) == PRESENT for i in ids):
            self.not_found_after_ack.append(first)
            return  # nothing was deleted: the ids keep their state (the check finds the gap)
        for i in ids:
            self.state[i] = UNKNOWN

    def apply_lines(self, lines):
        for line in lines:
            if line.strip():
                self.apply(*parse_ledger_line(line))

    @classmethod
    def from_dir(cls, ledger_dir):
        ledger = cls()
        for path in ledger_files(ledger_dir):
            ledger.apply_lines(path.read_text().splitlines())
        return ledger


def compare(state, present):
    """Checks what the server holds (`present`: id -> bool) against the ledger's states. Returns
    counts and the ids that break it: `lost` (acknowledged, not deleted since, missing) and
    `resurrected` (acknowledged deleted, yet present)."""
    result = {"expected_present": 0, "expected_absent": 0, "unknown_present": 0,
              "unknown_absent": 0, "lost": [], "resurrected": []}
    for item_id, expected in sorted(state.items()):
        found = present[item_id]
        if expected == PRESENT:
            result["expected_present"] += 1
            if not found:
                result["lost"].append(item_id)
        elif expected == ABSENT:
            result["expected_absent"] += 1
            if found:
                result["resurrected"].append(item_id)
        else:
            result["unknown_present" if found else "unknown_absent"] += 1
    return result


# ---------------------------------------------------------------------------------------------
# Status codes

# Which codes an operation may answer, and under which fault; "always" needs none. Everything
# else is unexpected. Why each is allowed:
#   UNAVAILABLE   while the server is down (SIGKILL until it listens again; the client's channel
#                 reconnects with back-off, hence the grace period), and for writes while the
#                 state folder is full (SQLite's SQLITE_FULL, a failed image write: the server says
#                 Unavailable, "a retry or an operator may fix it"); RESOURCE_EXHAUSTED would be
#                 as clear, so it is accepted there too
#   ABORTED       an add whose serving model changed while it ran (a hot swap): "send them again"
#   NOT_FOUND     a delete of ids whose add was not acknowledged (the ledger check tells it from
#                 a lost write), an item the ledger check asks for that is absent
#   CANCELLED     a stalled stream the client cancels itself
#   INTERRUPTED   a training job the server was killed under (a job state, not a gRPC code)
EXPECTED = {
    "OK": {"*": "always"},
    "UNAVAILABLE": {"*": "kill", "add": "kill|disk-full", "delete": "kill|disk-full"},
    "RESOURCE_EXHAUSTED": {"add": "disk-full", "delete": "disk-full"},
    "ABORTED": {"add": "swap"},
    "NOT_FOUND": {"delete": "always", "get-item": "always"},
    "CANCELLED": {"watch-stalled": "always", "*": "kill"},
    "SUCCEEDED": {"training-job": "always"},
    "INTERRUPTED": {"training-job": "kill"},
}


# Operations that follow another's rules: the writer that fills the disk adds like any other.
ALIASES = {"add-full": "add"}


def allowed(op, code, faults):
    """Whether `op` may answer `code` while `faults` (a set of fault names) were active."""
    op = ALIASES.get(op, op)
    rule = EXPECTED.get(code, {})
    condition = rule.get(op, rule.get("*"))
    if condition is None:
        return False
    return condition == "always" or any(f in faults for f in condition.split("|"))


def overlapping_faults(t_start, t_end, windows, grace):
    """The names of the fault windows [(name, start, end)] that overlap [t_start, t_end], each
    window stretched by `grace` seconds at its end."""
    return {name for name, start, end in windows if start <= t_end and t_start <= end + grace}


def code_table(records, windows, grace):
    """records: (op, code, count, t_start, t_end). Returns {(op, code): [count, unexpected]}."""
    table = collections.defaultdict(lambda: [0, 0])
    for op, code, count, t_start, t_end in records:
        cell = table[(op, code)]
        cell[0] += count
        if not allowed(op, code, overlapping_faults(t_start, t_end, windows, grace)):
            cell[1] += count
    return dict(table)


# ---------------------------------------------------------------------------------------------
# Memory


def rss_growth(samples, warmup, window, min_span):
    """samples: (t, lifetime, rss_bytes). Per lifetime (from its first sample): the baseline is
    the median of the samples in [warm-up, warm-up + window), the end the median of the last
    `window` seconds; growth = end / baseline - 1. A lifetime counts when it lasts at least
    `min_span` seconds past its warm-up. Returns (rows, judged): rows per lifetime, and the rows
    the verdict uses: the lifetimes that count, else the longest one (marked "short")."""
    by_life = collections.defaultdict(list)
    for t, life, rss in samples:
        by_life[life].append((t, rss))
    rows = []
    for life, points in sorted(by_life.items()):
        points.sort()
        t0, t_last = points[0][0], points[-1][0]
        after = [(t, r) for t, r in points if t - t0 >= warmup]
        row = {"lifetime": life, "seconds": t_last - t0, "samples": len(points),
               "peak": max(r for _, r in points), "counts": False}
        if len(after) >= 2:
            span = after[-1][0] - after[0][0]
            base = [r for t, r in after if t < after[0][0] + window]
            end = [r for t, r in after if t > t_last - window]
            row.update(baseline=statistics.median(base), end=statistics.median(end),
                       span=span, counts=span >= min_span)
            row["growth"] = row["end"] / row["baseline"] - 1
        rows.append(row)
    judged = [r for r in rows if r["counts"]]
    if not judged:
        measured = [r for r in rows if "growth" in r]
        if measured:
            longest = max(measured, key=lambda r: r["span"])
            judged = [dict(longest, short=True)]
    return rows, judged


# ---------------------------------------------------------------------------------------------
# The report


def read_jsonl(path):
    path = pathlib.Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


BENCH_OPS = ("search-vector", "search-image", "embed", "add", "add-full", "delete")


def gather(out):
    """Every call's (op, code, count, t_start, t_end) and the fault windows, from OUT_DIR."""
    rounds = {r["round"]: r for r in read_jsonl(out / "rounds.jsonl")}
    records = []
    for path in sorted((out / "bench").glob("round-*.json")):
        match = re.fullmatch(r"round-(\d+)-(.+)", path.stem)
        rnd, op = rounds[int(match.group(1))], match.group(2)
        result = json.loads(path.read_text())
        codes = dict(result["errors"])
        codes["OK"] = result["ok"]
        for code, count in codes.items():
            if count:
                records.append((op, code, count, rnd["t_start"], rnd["t_end"]))
    for op in read_jsonl(out / "ops.jsonl"):
        records.append((op["op"], op["code"], op.get("count", 1), op["t_start"], op["t_end"]))
    events = read_jsonl(out / "events.jsonl")
    windows = [(e["event"], e["t_start"], e["t_end"]) for e in events
               if e["event"] in ("kill", "disk-full", "crash")]
    windows += [("swap", o["t_start"], o["t_end"]) for o in read_jsonl(out / "ops.jsonl")
                if o["op"] == "swap"]
    windows += [("burst", r["t_start"], r["t_end"]) for r in rounds.values() if r.get("burst")]
    return records, windows, events, rounds


def read_rss(path):
    """rss.tsv's samples as (t, lifetime, bytes) lists: resident, and malloc's in use (when the
    line has it); plus the thread counts per lifetime."""
    samples, in_use, threads = [], [], collections.defaultdict(list)
    if path.exists():
        for line in path.read_text().splitlines():
            t, life, _pid, rss, nthreads, *heap = line.split()
            samples.append((float(t), int(life), int(rss)))
            threads[int(life)].append(int(nthreads))
            if heap and heap[0] != "-":
                in_use.append((float(t), int(life), float(heap[0])))
    return samples, in_use, threads


def mib(value):
    return f"{value / 2**20:.1f}"


def report(out, warmup, window, min_span, limit, grace):
    """Writes OUT_DIR/soak.md and verdict.json; returns (exit status, the report's text)."""
    out = pathlib.Path(out)
    records, windows, events, rounds = gather(out)
    table = code_table(records, windows, grace)
    ledger = Ledger.from_dir(out / "ledger")
    checks = read_jsonl(out / "checks.jsonl")
    samples, in_use, threads = read_rss(out / "rss.tsv")
    rows, judged = rss_growth(samples, warmup, window, min_span)
    in_use_rows = {r["lifetime"]: r for r in rss_growth(in_use, warmup, window, min_span)[0]}

    problems = []
    unexpected = sum(u for _, u in table.values())
    if unexpected:
        problems.append(f"{unexpected} calls answered a code their faults do not explain")
    lost = sorted({i for c in checks for i in c.get("lost", [])})
    resurrected = sorted({i for c in checks for i in c.get("resurrected", [])})
    if lost:
        problems.append(f"{len(lost)} acknowledged adds lost (ids {lost[:10]})")
    if resurrected:
        problems.append(f"{len(resurrected)} acknowledged deletes undone (ids {resurrected[:10]})")
    if ledger.not_found_after_ack:
        problems.append(f"{len(ledger.not_found_after_ack)} deletes answered NOT_FOUND for "
                        f"acknowledged items (first ids {ledger.not_found_after_ack[:10]})")
    failed_checks = [c for c in checks if c.get("error") or c.get("index_mismatch")]
    if failed_checks:
        problems.append(f"{len(failed_checks)} ledger checks failed or found the index and the "
                        f"store disagreeing")
    if not checks:
        problems.append("no ledger check ran")
    crashes = [e for e in events if e["event"] == "crash"]
    if crashes:
        problems.append(f"the server exited on its own {len(crashes)} times")
    for e in events:
        if e["event"] == "error":
            problems.append(f"soak error: {e.get('what')}")
    worst = max((r["growth"] for r in judged), default=None)
    if worst is None:
        problems.append("no memory samples after warm-up")
    elif worst >= limit / 100:
        problems.append(f"resident memory grew {worst * 100:.2f}% (limit {limit}%)")

    lines = ["# Soak", ""]
    if rounds:
        t0 = min(r["t_start"] for r in rounds.values())
        t1 = max(r["t_end"] for r in rounds.values())
        lines.append(f"{len(rounds)} rounds of load over {(t1 - t0) / 60:.1f} min.")
        lines.append("")
    lines += ["## Operations and status codes", "",
              "| operation | code | calls | unexpected |", "|---|---|---|---|"]
    order = {op: i for i, op in enumerate(BENCH_OPS)}
    for (op, code), (count, bad) in sorted(
            table.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0][0], kv[0][1] != "OK",
                                           kv[0][1])):
        lines.append(f"| {op} | {code} | {count} | {bad or ''} |")
    lines += ["", "## Faults", "", "| fault | times | seconds (total) |", "|---|---|---|"]
    by_fault = collections.defaultdict(list)
    names = {"kill": "SIGKILL + restart (seconds down)", "disk-full": "state folder full",
             "sigterm": "SIGTERM at the end (drain, snapshot)", "crash": "crash"}
    for e in events:
        if e["event"] in names:
            by_fault[names[e["event"]]].append(e["t_end"] - e["t_start"])
    stalls = {}
    for o in read_jsonl(out / "ops.jsonl"):
        if o["op"] == "swap":
            by_fault["hot swap"].append(o["t_end"] - o["t_start"])
        elif o["op"] == "training-job":
            by_fault["training job"].append(o["t_end"] - o["t_start"])
        elif o["op"] == "watch-stalled":
            stalls[o["t_start"]] = o["t_end"] - o["t_start"]
    if stalls:
        by_fault["stalled stream readers"] = list(stalls.values())
    burst_rounds = [r for r in rounds.values() if r.get("burst")]
    if burst_rounds:
        by_fault["burst (10x rate)"] = [r["t_end"] - r["t_start"] for r in burst_rounds]
    for name, durations in sorted(by_fault.items()):
        lines.append(f"| {name} | {len(durations)} | {sum(durations):.1f} |")
    lines += ["", "## Writes", "",
              f"Acknowledged: {ledger.acked['add']} ids added, {ledger.acked['delete']} deleted; "
              f"unknown (failed or cut off): {ledger.unknown['add']} adds, "
              f"{ledger.unknown['delete']} deletes. {len(checks)} ledger checks "
              f"(after each restart, after the disk was freed, at the end); lost: {len(lost)}, "
              f"deleted but present: {len(resurrected)}."]
    if checks:
        last = checks[-1]
        lines.append(f"Last check: {last.get('expected_present', 0)} ids present and "
                     f"{last.get('expected_absent', 0)} absent as acknowledged; of the unknown, "
                     f"{last.get('unknown_present', 0)} present and "
                     f"{last.get('unknown_absent', 0)} absent; the server's item count "
                     f"{last.get('server_items')} against {last.get('found')} found.")
    lines += ["", "## Resident memory", "",
              f"Per server lifetime: baseline = median RSS of the {window:.0f} s after a "
              f"{warmup:.0f} s warm-up, end = median of its last {window:.0f} s; a lifetime counts "
              f"when it runs {min_span:.0f} s or more past its warm-up (else the longest is shown, "
              "marked short). Malloc in use: what the program holds from malloc (the server's "
              "hier_malloc_in_use_bytes), baseline and end the same way: resident memory that "
              "grows while it stays flat is held by the allocator, not by the program.", "",
              "| lifetime | seconds | baseline MiB | end MiB | growth | peak MiB | threads at end "
              "(max) | malloc in use MiB | in-use growth |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        growth = f"{r['growth'] * 100:+.2f}%" if "growth" in r else "–"
        if "growth" in r and not r["counts"]:
            growth += " (short)"
        nthreads = threads.get(r["lifetime"], [0])
        heap = in_use_rows.get(r["lifetime"], {})
        heap_span = (f"{mib(heap['baseline'])} → {mib(heap['end'])}" if "baseline" in heap
                     else "–")
        heap_growth = f"{heap['growth'] * 100:+.2f}%" if "growth" in heap else "–"
        lines.append(f"| {r['lifetime']} | {r['seconds']:.0f} | "
                     f"{mib(r['baseline']) if 'baseline' in r else '–'} | "
                     f"{mib(r['end']) if 'end' in r else '–'} | {growth} | {mib(r['peak'])} | "
                     f"{nthreads[-1]} ({max(nthreads)}) | {heap_span} | {heap_growth} |")
    if worst is not None:
        lines.append("")
        lines.append(f"Judged growth: {worst * 100:+.2f}% (limit {limit}%)"
                     + (" from a lifetime shorter than asked" if judged[0].get("short") else ""))
    lines += ["", "## Verdict", ""]
    lines += [f"* {p}" for p in problems] if problems else ["PASS"]
    text = "\n".join(lines) + "\n"
    (out / "soak.md").write_text(text)
    (out / "verdict.json").write_text(json.dumps(
        {"pass": not problems, "problems": problems, "rss_growth": worst,
         "codes": {f"{op} {code}": c for (op, code), (c, _) in table.items()},
         "acked_adds": ledger.acked["add"], "acked_deletes": ledger.acked["delete"],
         "lost": len(lost), "resurrected": len(resurrected)}, indent=1) + "\n")
    return (0 if not problems else 1), text


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report")
    rep.add_argument("out")
    rep.add_argument("--warmup", type=float, default=300.0, help="seconds of each lifetime")
    rep.add_argument("--window", type=float, default=60.0, help="seconds averaged at each end")
    rep.add_argument("--min-span", type=float, default=300.0,
                     help="seconds past warm-up for a lifetime to count")
    rep.add_argument("--limit", type=float, default=5.0, help="largest growth allowed, percent")
    rep.add_argument("--grace", type=float, default=10.0,
                     help="seconds a fault's codes may still appear after it ended")
    args = parser.parse_args()
    status, text = report(args.out, args.warmup, args.window, args.min_span, args.limit,
                          args.grace)
    print(text, end="")
    return status


if __name__ == "__main__":
    sys.exit(main())
