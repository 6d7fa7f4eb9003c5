"""Benchmark: intake accuracy on the held-out requests and the classifier's latency.

Trains intake the way the API does, from the sample catalog's workflow definitions (their
``examples``); while the sample workflows are not all registered yet it trains from
``orchestrator.demo.catalog.examples.EXAMPLES`` directly and says so. Then it classifies every
request of ``tests/intake/heldout.yaml`` (written separately from the training examples) and
prints: accuracy overall and per workflow, the confusion pairs, coverage and accuracy above the
confidence threshold (the share of requests intake would route on its own, and how often it is
right when it does), the confidence given to a few off-topic requests, and p50/p99 latency of
``classify`` over many calls. Prints the figures; asserts nothing.

Usage: ``python -m bench.intake [--source auto|catalog|examples] [--threshold 0.55] [--calls 3000]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from orchestrator.demo.catalog.examples import EXAMPLES
from orchestrator.services.intake import DEFAULT_THRESHOLD, Intake

HELDOUT = Path(__file__).resolve().parents[1] / "tests" / "intake" / "heldout.yaml"
OFF_TOPIC = (
    "what's the weather in Paris",
    "tell me a joke",
    "book a meeting room for tomorrow at 3pm",
    "translate this paragraph into German",
)


@dataclass(frozen=True)
class Labelled:
    text: str
    workflow: str
    hard: bool


def load_heldout(path: Path = HELDOUT) -> list[Labelled]:
    items = yaml.safe_load(path.read_text(encoding="utf-8"))["requests"]
    return [Labelled(i["text"], i["workflow"], bool(i.get("hard", False))) for i in items]


def build_intake(workflows: set[str], source: str = "auto") -> tuple[Intake, str, list[str]]:
    """Intake from the sample catalog (as the API builds it) or from EXAMPLES.

    ``auto`` uses the catalog when it registers every held-out workflow with examples and falls
    back to EXAMPLES otherwise. Also returns notes on catalog examples that differ from EXAMPLES.
    """
    if source == "examples":
        return Intake.train(EXAMPLES), "EXAMPLES (orchestrator.demo.catalog.examples)", []
    try:
        from orchestrator.catalog.loader import load_catalog

        catalog = load_catalog(["orchestrator.demo.catalog"])
    except Exception as exc:  # the catalog is built concurrently; the examples are enough
        if source == "catalog":
            raise
        return Intake.train(EXAMPLES), f"EXAMPLES (the sample catalog did not load: {exc!r})", []
    latest = {name_of(ref): catalog.workflows[name_of(ref)] for ref in catalog.workflow_refs()}
    notes = [
        f"{wf.name}@{wf.version} has {len(wf.examples)} examples, not the {len(EXAMPLES[wf.name])} of EXAMPLES"
        for wf in latest.values()
        if wf.name in EXAMPLES and list(wf.examples) != list(EXAMPLES[wf.name])
    ]
    missing = sorted(w for w in workflows if w not in latest or not latest[w].examples)
    if missing and source == "auto":
        return Intake.train(EXAMPLES), f"EXAMPLES (not registered yet: {', '.join(missing)})", []
    return Intake.from_catalog(catalog), "the sample catalog (orchestrator.demo.catalog)", notes


def name_of(ref: str) -> str:
    return ref.split("@", 1)[0]


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
    parser.add_argument("--calls", type=int, default=3000, help="classify calls timed (>= 1000)")
    parser.add_argument(
        "--source",
        choices=("auto", "catalog", "examples"),
        default="auto",
        help="train from the sample catalog, from EXAMPLES, or the catalog when it is complete (default)",
    )
    args = parser.parse_args()

    heldout = load_heldout()
    started = time.perf_counter()
    intake, source, notes = build_intake({item.workflow for item in heldout}, args.source)
    train_ms = (time.perf_counter() - started) * 1000
    print(f"trained from {source}")
    for note in notes:
        print(f"  note: {note}")
    print(
        f"  {len(intake.refs)} workflows, {intake.n_examples} examples, {train_ms:.0f} ms to train; "
        f"temperature {intake.temperature:.4f}, none score {intake.none_score:.3f}"
    )

    results = [(item, intake.classify(item.text)) for item in heldout]
    correct = [name_of(res.ref) == item.workflow for item, res in results]
    print(f"\nheld-out set: {len(heldout)} requests ({HELDOUT.relative_to(HELDOUT.parents[2])})")
    print(f"  accuracy {sum(correct) / len(heldout):.3f} ({sum(correct)}/{len(heldout)})")
    hard = [ok for (item, _), ok in zip(results, correct, strict=True) if item.hard]
    if hard:
        print(f"  accuracy on the {len(hard)} hard ones {sum(hard) / len(hard):.3f}")

    print("  per workflow:")
    for workflow in sorted({item.workflow for item in heldout}):
        oks = [ok for (item, _), ok in zip(results, correct, strict=True) if item.workflow == workflow]
        print(f"    {workflow:<16} {sum(oks) / len(oks):.3f} ({sum(oks)}/{len(oks)})")

    confusion = Counter(
        (item.workflow, name_of(res.ref)) for (item, res), ok in zip(results, correct, strict=True) if not ok
    )
    print("  confusion pairs (expected -> picked):" + ("" if confusion else " none"))
    for (expected, picked), count in sorted(confusion.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {expected} -> {picked}: {count}")
    for (item, res), ok in zip(results, correct, strict=True):
        if not ok:
            print(f"      [{res.confidence:.2f}] {item.text}")

    print("\n  threshold   coverage   accuracy above   (coverage: share routed without asking)")
    for threshold in sorted({0.4, 0.5, args.threshold, 0.6, 0.7, 0.8}):
        above = [ok for (_, res), ok in zip(results, correct, strict=True) if res.confidence >= threshold]
        acc = f"{sum(above) / len(above):.3f}" if above else "  -  "
        mark = "  <- default" if threshold == args.threshold else ""
        print(f"  {threshold:>9.2f}   {len(above) / len(heldout):>8.3f}   {acc:>14}{mark}")

    print("\n  off-topic requests (should fall below the threshold):")
    for text in OFF_TOPIC:
        res = intake.classify(text)
        print(f"    {res.confidence:.3f}  {name_of(res.ref):<16} {text!r}")

    texts = [item.text for item in heldout]
    for text in texts:  # warm up
        intake.classify(text)
    calls = max(args.calls, 1000)
    wall: list[float] = []
    cpu: list[float] = []  # this thread's CPU time: the classifier's own cost, without scheduling waits
    for i in range(calls):
        text = texts[i % len(texts)]
        w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        intake.classify(text)
        cpu.append((time.thread_time_ns() - c0) / 1e6)
        wall.append((time.perf_counter_ns() - w0) / 1e6)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nclassify latency over {calls} calls (ms; {os.cpu_count()} CPUs, load average {load})")
    for label, values in (("wall", sorted(wall)), ("cpu ", sorted(cpu))):
        print(
            f"  {label}  p50 {percentile(values, 0.50):.3f}   p90 {percentile(values, 0.90):.3f}   "
            f"p99 {percentile(values, 0.99):.3f}   max {values[-1]:.3f}   mean {statistics.fmean(values):.3f}"
        )


if __name__ == "__main__":
    main()
