#!/usr/bin/env python3
"""Tests of deploy/experiments/soak_check.py: the write ledger's expectations, the status-code
rules, the memory-growth figure and the report's verdict over a small soak folder.

Run: python3 tests/deploy/soak_check_test.py (CTest: soak_check_test, label deploy)."""

import json
import pathlib
import sys
import tempfile
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "deploy" / "experiments"))
import soak_check  # noqa: E402
from soak_check import ABSENT, PRESENT, UNKNOWN  # noqa: E402


class LedgerTest(unittest.TestCase):
    def test_states_follow_the_writes_in_order(self):
        cases = [
            # (lines, id -> expected state)
            (["add 10 2 OK"], {10: PRESENT, 11: PRESENT}),
            (["add 10 2 OK", "delete 10 2 OK"], {10: ABSENT, 11: ABSENT}),
            (["add 10 2 UNAVAILABLE"], {10: UNKNOWN, 11: UNKNOWN}),
            (["add 10 2 OK", "delete 10 2 DEADLINE_EXCEEDED"], {10: UNKNOWN, 11: UNKNOWN}),
            (["add 10 2 UNAVAILABLE", "delete 10 2 OK"], {10: ABSENT, 11: ABSENT}),
            (["add 10 1 ABORTED", "delete 10 1 NOT_FOUND"], {10: UNKNOWN}),
        ]
        for lines, expected in cases:
            with self.subTest(lines=lines):
                ledger = soak_check.Ledger()
                ledger.apply_lines(lines)
                self.assertEqual(ledger.state, expected)
                self.assertEqual(ledger.not_found_after_ack, [])

    def test_counts_ids_by_outcome(self):
        ledger = soak_check.Ledger()
        ledger.apply_lines(["add 0 4 OK", "add 4 4 UNAVAILABLE", "delete 0 4 OK", "", "add 8 4 OK"])
        self.assertEqual(ledger.acked["add"], 8)
        self.assertEqual(ledger.acked["delete"], 4)
        self.assertEqual(ledger.unknown["add"], 4)
        self.assertEqual(ledger.calls[("add", "OK")], 2)

    def test_a_not_found_delete_of_acknowledged_items_is_a_loss(self):
        ledger = soak_check.Ledger()
        ledger.apply_lines(["add 10 2 OK", "delete 10 2 NOT_FOUND"])
        self.assertEqual(ledger.not_found_after_ack, [10])
        self.assertEqual(ledger.state, {10: PRESENT, 11: PRESENT})

    def test_bad_lines_are_named(self):
        with self.assertRaisesRegex(ValueError, "upsert"):
            soak_check.parse_ledger_line("upsert 1 1 OK")
        with self.assertRaises(ValueError):
            soak_check.parse_ledger_line("add 1 OK")

    def test_files_are_read_round_by_round(self):
        with tempfile.TemporaryDirectory() as d:
            d = pathlib.Path(d)
            # Round 1 deletes what round 0 added; round 10 sorts after round 2.
            (d / "round-0001-delete.txt").write_text("delete 1000 4 OK\n")
            (d / "round-0000-add.txt").write_text("add 1000 4 OK\n")
            (d / "round-0002-add-full.txt").write_text("add 2000 4 OK\n")
            (d / "round-0002-add.txt").write_text("add 3000 4 OK\n")
            (d / "round-0010-add.txt").write_text("add 4000 4 OK\n")
            (d / "init.txt").write_text("add 0 4 OK\n")
            names = [p.name for p in soak_check.ledger_files(d)]
            self.assertEqual(names, ["init.txt", "round-0000-add.txt", "round-0001-delete.txt",
                                     "round-0002-add.txt", "round-0002-add-full.txt",
                                     "round-0010-add.txt"])
            ledger = soak_check.Ledger.from_dir(d)
            self.assertEqual(ledger.state[1000], ABSENT)
            self.assertEqual(ledger.state[2003], PRESENT)
            (d / "notes.txt").write_text("")
            with self.assertRaisesRegex(ValueError, "notes.txt"):
                soak_check.ledger_files(d)

    def test_compare_finds_lost_and_resurrected_ids(self):
        state = {1: PRESENT, 2: PRESENT, 3: ABSENT, 4: ABSENT, 5: UNKNOWN, 6: UNKNOWN}
        present = {1: True, 2: False, 3: False, 4: True, 5: True, 6: False}
        result = soak_check.compare(state, present)
        self.assertEqual(result["lost"], [2])
        self.assertEqual(result["resurrected"], [4])
        self.assertEqual((result["expected_present"], result["expected_absent"]), (2, 2))
        self.assertEqual((result["unknown_present"], result["unknown_absent"]), (1, 1))


class CodesTest(unittest.TestCase):
    def test_rules(self):
        cases = [
            ("search-vector", "OK", set(), True),
            ("search-vector", "UNAVAILABLE", set(), False),
            ("search-vector", "UNAVAILABLE", {"kill"}, True),
            ("search-vector", "UNAVAILABLE", {"disk-full"}, False),
            ("add", "UNAVAILABLE", {"disk-full"}, True),
            ("add-full", "UNAVAILABLE", {"disk-full"}, True),
            ("delete", "RESOURCE_EXHAUSTED", {"disk-full"}, True),
            ("embed", "RESOURCE_EXHAUSTED", {"disk-full"}, False),
            ("add", "ABORTED", {"swap"}, True),
            ("add", "ABORTED", {"burst"}, False),
            ("delete", "ABORTED", {"swap"}, False),
            ("delete", "NOT_FOUND", set(), True),
            ("search-image", "NOT_FOUND", set(), False),
            ("watch-stalled", "CANCELLED", set(), True),
            ("training-job", "SUCCEEDED", set(), True),
            ("training-job", "FAILED", {"kill"}, False),
            ("training-job", "INTERRUPTED", {"kill"}, True),
            ("embed", "INTERNAL", {"kill", "disk-full", "swap", "burst"}, False),
            ("search-vector", "DEADLINE_EXCEEDED", {"burst"}, False),
        ]
        for op, code, faults, expected in cases:
            with self.subTest(op=op, code=code, faults=faults):
                self.assertEqual(soak_check.allowed(op, code, faults), expected)

    def test_faults_overlap_with_a_grace_period(self):
        windows = [("kill", 100.0, 105.0), ("swap", 200.0, 210.0)]
        self.assertEqual(soak_check.overlapping_faults(90, 101, windows, 10), {"kill"})
        self.assertEqual(soak_check.overlapping_faults(114, 120, windows, 10), {"kill"})
        self.assertEqual(soak_check.overlapping_faults(116, 120, windows, 10), set())
        self.assertEqual(soak_check.overlapping_faults(0, 300, windows, 0), {"kill", "swap"})

    def test_table_counts_unexpected_calls(self):
        windows = [("kill", 100.0, 105.0)]
        records = [("add", "OK", 10, 90, 110), ("add", "UNAVAILABLE", 3, 90, 110),
                   ("add", "UNAVAILABLE", 2, 200, 220), ("embed", "OK", 5, 200, 220)]
        table = soak_check.code_table(records, windows, grace=10)
        self.assertEqual(table[("add", "OK")], [10, 0])
        self.assertEqual(table[("add", "UNAVAILABLE")], [5, 2])
        self.assertEqual(table[("embed", "OK")], [5, 0])


class MemoryTest(unittest.TestCase):
    @staticmethod
    def lifetime(life, t0, seconds, rss_at):
        return [(t0 + t, life, rss_at(t)) for t in range(0, seconds, 2)]

    def test_growth_per_lifetime_after_warm_up(self):
        mb = 2**20
        # Lifetime 0: short. Lifetime 1: grows during warm-up, then flat with a spike (a swap).
        samples = self.lifetime(0, 0, 100, lambda t: 100 * mb)
        samples += self.lifetime(1, 1000, 900, lambda t: (100 + min(t, 300) // 10) * mb
                                 + (50 * mb if 500 <= t < 510 else 0))
        rows, judged = soak_check.rss_growth(samples, warmup=300, window=60, min_span=300)
        self.assertEqual([r["lifetime"] for r in rows], [0, 1])
        self.assertNotIn("growth", rows[0])
        self.assertEqual([r["lifetime"] for r in judged], [1])
        self.assertAlmostEqual(judged[0]["growth"], 0.0)
        self.assertEqual(judged[0]["peak"], 180 * mb)

    def test_a_steady_climb_is_growth(self):
        samples = self.lifetime(0, 0, 1200, lambda t: 1000 + t)  # +1 byte/s on 1000
        _, judged = soak_check.rss_growth(samples, warmup=300, window=60, min_span=300)
        # Baseline: median of t in [300, 360) = 1329; end: median of the last 60 s = 1169 + 1000.
        self.assertAlmostEqual(judged[0]["growth"], (2168 / 1329) - 1, places=2)

    def test_without_a_long_lifetime_the_longest_is_judged_and_marked(self):
        samples = self.lifetime(0, 0, 200, lambda t: 100)
        samples += self.lifetime(1, 500, 400, lambda t: 100)
        _, judged = soak_check.rss_growth(samples, warmup=60, window=30, min_span=600)
        self.assertEqual(len(judged), 1)
        self.assertEqual(judged[0]["lifetime"], 1)
        self.assertTrue(judged[0]["short"])


class ReportTest(unittest.TestCase):
    """A two-round soak folder: the verdict passes, then each kind of failure makes it fail."""

    def write_soak(self, d, lost=(), code="UNAVAILABLE", rss_end=100, heap_end=None):
        d = pathlib.Path(d)
        for sub in ("bench", "ledger"):
            (d / sub).mkdir(exist_ok=True)
        rounds = [{"round": 0, "t_start": 0, "t_end": 20, "burst": False},
                  {"round": 1, "t_start": 20, "t_end": 40, "burst": True}]
        (d / "rounds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rounds))
        (d / "events.jsonl").write_text(json.dumps(
            {"event": "kill", "t_start": 5, "t_end": 8}) + "\n")
        (d / "bench" / "round-0000-add.json").write_text(json.dumps(
            {"ok": 30, "errors": {code: 2}}))
        (d / "bench" / "round-0001-search-vector.json").write_text(json.dumps(
            {"ok": 400, "errors": {}}))
        (d / "ledger" / "round-0000-add.txt").write_text("add 1000 4 OK\nadd 1004 4 UNAVAILABLE\n")
        (d / "ops.jsonl").write_text(json.dumps(
            {"op": "get-item", "code": "OK", "count": 4, "t_start": 50, "t_end": 51}) + "\n")
        (d / "checks.jsonl").write_text(json.dumps(
            {"lost": list(lost), "resurrected": [], "expected_present": 4,
             "server_items": 4, "found": 4, "index_mismatch": False}) + "\n")
        heap = (lambda t: "") if heap_end is None else (
            lambda t: f" {50 if t < 30 else heap_end} {10}")
        (d / "rss.tsv").write_text("".join(
            f"{t} 0 1 {100 if t < 30 else rss_end} 12{heap(t)}\n" for t in range(0, 40, 2)))

    def verdict(self, **kwargs):
        with tempfile.TemporaryDirectory() as d:
            self.write_soak(d, **kwargs)
            status, _ = soak_check.report(d, warmup=0, window=10, min_span=10, limit=5, grace=10)
            verdict = json.loads((pathlib.Path(d) / "verdict.json").read_text())
            table = (pathlib.Path(d) / "soak.md").read_text()
            return status, verdict, table

    def test_a_clean_soak_passes(self):
        status, verdict, table = self.verdict()
        self.assertEqual(status, 0, verdict["problems"])
        self.assertEqual(verdict["acked_adds"], 4)
        self.assertEqual(verdict["codes"]["add UNAVAILABLE"], 2)
        self.assertIn("| add | UNAVAILABLE | 2 |  |", table)
        self.assertIn("| SIGKILL + restart (seconds down) | 1 | 3.0 |", table)

    def test_malloc_in_use_is_reported_beside_resident_memory(self):
        _, _, table = self.verdict(rss_end=110, heap_end=51)
        self.assertIn("| +10.00% | 0.0 | 12 (12) | 0.0 → 0.0 | +2.00% |", table)
        _, _, table = self.verdict()
        self.assertIn("| +0.00% | 0.0 | 12 (12) | – | – |", table)

    def test_each_failure_fails_the_verdict(self):
        for kwargs, problem in [({"lost": [1001]}, "lost"), ({"code": "INTERNAL"}, "code"),
                                ({"rss_end": 106}, "resident memory grew")]:
            with self.subTest(problem=problem):
                status, verdict, _ = self.verdict(**kwargs)
                self.assertEqual(status, 1)
                self.assertTrue(any(problem in p for p in verdict["problems"]),
                                verdict["problems"])


if __name__ == "__main__":
    unittest.main()
