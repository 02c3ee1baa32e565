#!/usr/bin/env python3
"""Summarises a hier-study.sh folder: one Markdown row per cell with mean ± std over seeds of the
last evaluation's R@1, MAP@R and mistake severity, the paired difference per seed against the
protocol's "no-hier" cell, and the proxies' state (share on the clip sphere, median depth, active
triplet shares, distinct LCA proxies). Usage: hier_study_table.py OUT_DIR"""
import json
import pathlib
import statistics
import sys

METRICS = (("R@1", "R@1"), ("MAP@R", "MAP@R"), ("mistake_severity", "severity"))


def last_eval(run):
    evals, train = [], []
    for line in open(run / "metrics.jsonl"):
        record = json.loads(line)
        (evals if record["kind"] == "eval" else train).append(record)
    return (evals[-1] if evals else None), (train[-1] if train else None)


def spread(values, digits=4):
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def signed_spread(values):
    if not values:
        return "–"
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:+.4f} ± {std:.4f}"


def cells(out):
    for protocol in sorted(p for p in out.iterdir() if p.is_dir() and p.name != "shape-world"):
        for cell in sorted(c for c in protocol.iterdir() if c.is_dir()):
            runs = {}
            for run in sorted(cell.glob("s*")):
                if not (run / "metrics.jsonl").exists():
                    continue
                evaluation, train = last_eval(run)
                if evaluation is not None and "metrics" in evaluation:
                    runs[run.name] = (evaluation, train)
            yield protocol.name, cell.name, runs


def main():
    out = pathlib.Path(sys.argv[1])
    table = list(cells(out))
    baseline = {p: runs for p, name, runs in table if name == "no-hier"}
    print("| protocol | cell | seeds | R@1 | MAP@R | mistake severity | ΔR@1 (paired) "
          "| ΔMAP@R (paired) | Δseverity (paired) | proxies on clip sphere | median proxy depth "
          "| active triplets (sample / proxy part) | LCA proxies per step |")
    print("|" + "---|" * 13)
    summary = []
    for protocol, name, runs in table:
        if not runs:
            continue
        row = {"protocol": protocol, "cell": name, "seeds": sorted(runs)}
        values = {key: [r[0]["metrics"].get(key) for r in runs.values()] for key, _ in METRICS}
        deltas = {}
        base = baseline.get(protocol, {})
        for key, _ in METRICS:
            deltas[key] = [runs[s][0]["metrics"][key] - base[s][0]["metrics"][key]
                           for s in runs if s in base and key in base[s][0]["metrics"]
                           and key in runs[s][0]["metrics"]] if name != "no-hier" else []
        clip, depth, active_s, active_p, lcas = [], [], [], [], []
        for evaluation, train in runs.values():
            proxies = evaluation.get("proxies")
            if proxies:
                clip.append(proxies["on_clip_sphere"] / proxies["proxies"])
                depth.append(proxies["depth"]["median"])
            if train and "active_sample_proxy" in train:
                active_s.append(train["active_sample_proxy"])
                active_p.append(train["active_proxy_proxy"])
                lcas.append(train["lca_proxies"])
        cols = [spread([v for v in values[key] if v is not None]) for key, _ in METRICS]
        cols += [signed_spread(deltas[key]) for key, _ in METRICS]
        cols.append(spread(clip, 2))
        cols.append(spread(depth, 2))
        cols.append(f"{spread(active_s, 2)} / {spread(active_p, 2)}" if active_s else "–")
        cols.append(spread(lcas, 0))
        print(f"| {protocol} | {name} | {len(runs)} | " + " | ".join(cols) + " |")
        row.update({"values": values, "paired_differences": deltas})
        summary.append(row)
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print("\nLast evaluation of each run (no selection on the test split); mistake severity: mean "
          "LCA height in the class tree of wrong top-1 results (lower is better); Δ: the cell "
          "minus no-hier with the same seed, mean ± std over seeds; diagnostics from the last "
          "evaluation and the last logged training window.")


if __name__ == "__main__":
    main()
