#!/usr/bin/env python3
"""Summarises a hier-study.sh folder: one Markdown row per cell with mean ± std over seeds of the
last evaluation's R@1, MAP@R and mistake severity, the paired difference per seed against the
protocol's "no-hier" cell, and the proxies' state (share on the clip sphere, median depth, active
triplet shares, distinct LCA proxies). Also writes OUT_DIR/summary.json and OUT_DIR/paired.svg
(the paired differences with their seed spread). Usage: hier_study_table.py OUT_DIR"""
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


def paired_svg(rows):
    """Horizontal bars: per cell, the mean paired difference of MAP@R and of mistake severity,
    with a line of ± one standard deviation over seeds."""
    rows = [r for r in rows if r["paired_differences"]["MAP@R"]]
    panels = (("MAP@R", "Δ MAP@R vs no HIER (higher is better)"),
              ("mistake_severity", "Δ mistake severity vs no HIER (lower is better)"))
    label_w, panel_w, row_h, top = 330, 300, 22, 50
    width = label_w + 2 * (panel_w + 30)
    height = top + row_h * len(rows) + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for p, (key, title) in enumerate(panels):
        x0 = label_w + p * (panel_w + 30)
        values = [abs(v) for r in rows for v in r["paired_differences"][key]] or [1.0]
        scale = (panel_w / 2 - 10) / max(max(values), 1e-9)
        mid = x0 + panel_w / 2
        out.append(f'<text x="{x0}" y="20" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{mid}" y1="{top - 8}" x2="{mid}" y2="{height - 25}" stroke="#444"/>')
        reach = (panel_w / 2 - 10) / scale  # the value at either end of the panel
        out.append(f'<text x="{x0}" y="{top - 10}" fill="#666">{-reach:+.3f}</text>')
        out.append(f'<text x="{x0 + panel_w - 45}" y="{top - 10}" fill="#666">{reach:+.3f}</text>')
        for i, row in enumerate(rows):
            d = row["paired_differences"][key]
            mean = statistics.mean(d)
            std = statistics.stdev(d) if len(d) > 1 else 0.0
            y = top + i * row_h
            good = (mean > 0) == (key == "MAP@R")
            colour = "#3a7d44" if good else "#b5483b"
            x = mid + min(0, mean) * scale
            out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{abs(mean) * scale:.1f}" '
                       f'height="{row_h - 8}" fill="{colour}"/>')
            out.append(f'<line x1="{mid + (mean - std) * scale:.1f}" y1="{y + (row_h - 8) / 2:.1f}" '
                       f'x2="{mid + (mean + std) * scale:.1f}" y2="{y + (row_h - 8) / 2:.1f}" '
                       f'stroke="black"/>')
            for v in d:  # each seed's difference
                out.append(f'<circle cx="{mid + v * scale:.1f}" cy="{y + (row_h - 8) / 2:.1f}" '
                           f'r="2.5" fill="none" stroke="black"/>')
            if p == 0:
                out.append(f'<text x="8" y="{y + row_h - 10:.1f}">{row["protocol"]}: {row["cell"]}</text>')
        out.append(f'<text x="{x0}" y="{height - 8}">bar: mean over seeds; line: ± 1 std; '
                   f'circles: seeds</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    out = pathlib.Path(sys.argv[1])
    table = list(cells(out))
    # A cell is compared with its protocol's "no-hier" cell, or with "no-hier-SUFFIX" when its name
    # ends with that suffix (e.g. hier-ipc18 against no-hier-ipc18).
    baselines = {(p, name): runs for p, name, runs in table if name.startswith("no-hier")}

    def baseline_of(protocol, name):
        for (p, base), runs in baselines.items():
            suffix = base[len("no-hier"):]
            if p == protocol and suffix and name.endswith(suffix):
                return runs
        return baselines.get((protocol, "no-hier"), {})

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
        base = baseline_of(protocol, name)
        for key, _ in METRICS:
            deltas[key] = [runs[s][0]["metrics"][key] - base[s][0]["metrics"][key]
                           for s in runs if s in base and key in base[s][0]["metrics"]
                           and key in runs[s][0]["metrics"]] if not name.startswith("no-hier") else []
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
    (out / "paired.svg").write_text(paired_svg(summary))
    print("\nLast evaluation of each run (no selection on the test split); mistake severity: mean "
          "LCA height in the class tree of wrong top-1 results (lower is better); Δ: the cell "
          "minus its no-hier cell with the same seed, mean ± std over seeds; diagnostics from the last "
          "evaluation and the last logged training window.")


if __name__ == "__main__":
    main()
