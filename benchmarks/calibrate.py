"""Fit the refusal model and the lexical gate on the dev splits; write them where the bot loads them
for ``POLICYBOT_EMBEDDER`` (``bot/data``, or ``bot/data/use`` for the ``use`` embedder).

    python benchmarks/calibrate.py [--dev eval/dev.jsonl eval/real-dev.jsonl] [--extra labels.jsonl] [--out DIR]

Only dev splits are used (never a test split); ``--extra`` adds rows of the same contract, e.g.
labelled questions from the log (``policy-bot labels export``). Both models see the signals of the serving
decision path (``Decider.consider``), questions resolved in their conversation as in service.

- Refusal: P(answerable) over the hybrid search's signals, on rows no hard rule decides. The
  threshold maximises refusal accuracy on dev within a false-refusal budget (default 2 %).
- Lexical gate: P(BM25's answer alone is right) over the lexical signals. The threshold is the
  lowest at which the gate, on dev, answers no question wrongly that the hybrid path (with the
  refusal model above) gets right: questions past it skip the embedding at no cost measured on dev.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bot.config import get_settings
from bot.evaluation import answer_correct, load_gold
from bot.pipeline import PolicyBot
from bot.refusal import CalibratedModel, shipped_folder, signals

PACKAGE = Path(__file__).resolve().parent.parent / "bot"

REFUSAL_FEATURES = ("coverage", "unknown_share", "log_bm25", "dense", "dense_top", "agreement", "figure_ok", "n_words")
GATE_FEATURES = ("coverage", "unknown_share", "log_bm25", "bm25_margin", "n_words")
THRESHOLDS = np.round(np.arange(0.05, 0.996, 0.01), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev", type=Path, nargs="+",
                    default=[Path("eval/dev.jsonl"), Path("eval/real-dev.jsonl")])
    ap.add_argument("--extra", type=Path, nargs="*", default=[],
                    help="extra training rows in the eval contract (policy-bot labels export), added to --dev")
    ap.add_argument("--out", type=Path, help="default: where the bot loads them from for POLICYBOT_EMBEDDER")
    ap.add_argument("--l2", type=float, default=1.0)
    ap.add_argument("--max-false-refusal", type=float, default=0.02, help="false-refusal budget on dev (small: a small dev set makes a loose budget overfit)")
    args = ap.parse_args()
    args.out = args.out or PACKAGE.joinpath(*shipped_folder(get_settings().embedder))
    args.out.mkdir(parents=True, exist_ok=True)

    # Calibration looks at both searches' decisions itself (and the gate may not exist yet; nor, for
    # a newly calibrated embedder, the refusal model: the default's stands in, unused).
    bot = PolicyBot(get_settings().model_copy(update={"lexical_gate": False}), refusal=CalibratedModel.load(None, "refusal.json"))
    gold = [g for path in [*args.dev, *args.extra] for g in load_gold(path)]
    refusal, right = fit_refusal(bot, gold, args)
    gate = fit_gate(bot, gold, right, args.l2)
    for name, model in (("refusal", refusal), ("gate", gate)):
        model.meta |= {"fitted_on": [str(p) for p in [*args.dev, *args.extra]], "l2": args.l2}
        (args.out / f"{name}.json").write_text(model.to_json() + "\n", encoding="utf-8")
        print(f"{name}: " + ", ".join(f"{f} {w:+.3f}" for f, w in zip(model.features, model.weights)))
        print(f"  threshold {model.threshold:.2f}: {model.meta} -> {args.out / f'{name}.json'}")


def fit_refusal(bot: PolicyBot, gold: list, args: argparse.Namespace) -> tuple[CalibratedModel, list[bool]]:
    """The refusal model, and for each question whether the hybrid path with it answers rightly."""
    rows = []  # (answerable, hard reason, question as understood, decision)
    for g in gold:
        q, d = bot.consider(g.question, g.history)
        rows.append((g.answerable, d.reason, q, d))
    soft = [(a, signals(d.query, d.chosen[0], d.evidence)) for a, hard, _, d in rows if hard is None]
    y = np.array([float(a) for a, _ in soft])
    model = CalibratedModel.fitted(REFUSAL_FEATURES, [s for _, s in soft], y, args.l2)
    probs = np.array([model.probability(s) for _, s in soft])

    n_ans = sum(a for a, *_ in rows)
    n_una = len(rows) - n_ans
    hard_ans = sum(a and h is not None for a, h, *_ in rows)
    hard_una = sum((not a) and h is not None for a, h, *_ in rows)

    def rates(t: float) -> tuple[float, float]:
        """(refusal accuracy, false-refusal rate) on dev at threshold ``t``."""
        return ((hard_una + int(((probs < t) & (y == 0)).sum())) / n_una,
                (hard_ans + int(((probs < t) & (y == 1)).sum())) / n_ans)

    table = {float(t): rates(t) for t in THRESHOLDS}
    # Best refusal accuracy among thresholds whose false-refusal rate stays within the budget
    # (the lowest false-refusal rate if none does); the middle of that plateau, since a small
    # dev set makes its edges noisy.
    feasible = {t: r for t, r in table.items() if r[1] <= args.max_false_refusal} or {
        t: r for t, r in table.items() if r[1] == min(x[1] for x in table.values())}
    top = max(r[0] for r in feasible.values())
    model.threshold = float(np.round(np.median([t for t, r in feasible.items() if r[0] >= top - 1e-9]), 2))
    accuracy, false_refusals = rates(model.threshold)
    model.meta = {"rows": len(rows), "soft_rows": len(soft), "dev_refusal_accuracy": round(accuracy, 4),
                  "dev_false_refusal_rate": round(false_refusals, 4)}

    right = []
    for (answerable, hard, q, d), g in zip(rows, gold):
        answers = hard is None and model.says_yes(signals(d.query, d.chosen[0], d.evidence))
        right.append(answers and answer_correct(bot.compose(q, d).answer, g.keywords) if answerable else not answers)
    return model, right


def fit_gate(bot: PolicyBot, gold: list, hybrid_right: list[bool], l2: float) -> CalibratedModel:
    """The lexical gate, fitted on BM25-only decisions no hard rule refuses."""
    rows = []  # (signals, BM25's answer is right, the hybrid path's is)
    for g, right in zip(gold, hybrid_right):
        q, d = bot.consider(g.question, g.history, lexical_only=True)
        if d.reason is None:
            ok = g.answerable and answer_correct(bot.compose(q, d).answer, g.keywords)
            rows.append((signals(d.query, d.chosen[0], d.evidence), ok, right))
    model = CalibratedModel.fitted(GATE_FEATURES, [s for s, *_ in rows], np.array([float(ok) for _, ok, _ in rows]), l2)
    probs = np.array([model.probability(s) for s, *_ in rows])
    lost = np.array([right and not ok for _, ok, right in rows])
    model.threshold = float(min((t for t in THRESHOLDS if not lost[probs >= t].any()), default=1.0))
    passed = probs >= model.threshold
    model.meta = {"rows": len(rows), "dev_share_gated": round(float(passed.sum()) / len(gold), 4),
                  "dev_gated_right": round(float(np.mean([ok for (_, ok, _), p in zip(rows, passed) if p])), 4)}
    return model


if __name__ == "__main__":
    main()
