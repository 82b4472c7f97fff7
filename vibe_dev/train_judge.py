"""Trains the offline judge's learned classifiers (intent, score band, guardrail) on the
train part of corpus/ and writes vibe/llm/offline/judge_model.npz.

    python -m vibe_dev.train_judge              # k-fold figures on the train part, then the artefact
    python -m vibe_dev.train_judge --compare    # also: other representations, k-fold and test split
    python -m vibe_dev.train_judge --check      # retrain in memory; exit 1 if the shipped artefact differs

Deterministic (fixed seed, lbfgs): the same corpus gives the same artefact. The test split
(corpus/test-split.txt) is never trained on, nor used to choose anything: model selection
is by 5-fold cross-validation on the train part; the test split is measured once per
candidate representation (--compare) and by `python -m vibe_dev.calibrate --corpus`.

Needs scikit-learn (a development dependency); the artefact needs only numpy.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from vibe.llm.base import Exchange, ProblemContext
from vibe.llm.offline.classifier import (
    ARTEFACT_PATH,
    CHAR,
    OOV_FEATURES,
    PREV_TUTOR,
    PREV_USER,
    RULES,
    WORD,
    Head,
    Hidden,
    JudgeModel,
    Second,
    quantize,
    read_model,
    save_model,
)
from vibe.llm.offline.encoder import DIM, clean, embed, embed_many, to_int8
from vibe.llm.offline.guardrail import rule_verdict_in_context
from vibe.llm.offline.learned import BAND_HEAD, GUARD_HEAD, INTENT_HEAD, NONE, make_inputs
from vibe.llm.offline.turn_judge import rule_score
from vibe_dev.calibrate import load_problem
from vibe_dev.corpus import CORPUS_DIR, TEST_SPLIT_PATH, load_guard, load_test_split, load_turns

SEED = 20251202
EMBEDDINGS_PATH = CORPUS_DIR / "embeddings.npz"
FOLDS = 5


@dataclass(frozen=True)
class Settings:
    """What the k-fold model selection chose (see README "Calibration")."""

    blocks: tuple[str, ...] = (CHAR, WORD, PREV_USER, PREV_TUTOR, RULES)
    block_weights: Mapping[str, float] = field(
        default_factory=lambda: {CHAR: 1.0, WORD: 0.7, PREV_USER: 0.4, PREV_TUTOR: 0.3, RULES: 0.15}
    )
    min_df: Mapping[str, int] = field(default_factory=lambda: {CHAR: 3, WORD: 2, PREV_USER: 2, PREV_TUTOR: 2})
    c: Mapping[str, float] = field(default_factory=lambda: {INTENT_HEAD: 8.0, BAND_HEAD: 2.0, GUARD_HEAD: 8.0})
    guard_threshold: float = 0.56  # chosen by choose_threshold on the k-fold predictions
    turns_in_guard: float = 0.5  # weight of the judged turns (violation or none) in the guardrail's training
    agency: bool = True  # the "who is asked to write" rule features (vibe/llm/offline/agency.py)
    oov: bool = True  # the guardrail-only out-of-vocabulary share features (classifier.oov_signals)
    # A hidden layer beside the linear head (classifier.Hidden): head -> (units, the fewest
    # training examples a column must be seen in to be read, its share of the probability).
    hidden: Mapping[str, tuple[int, int, float]] = field(default_factory=lambda: {INTENT_HEAD: (32, 3, 0.6)})
    hidden_epochs: int = 15
    hidden_alpha: float = 1e-4
    # The second reading (classifier.Second): head -> (the embedding block's weight, the
    # first reading's confidence under which the second decides).
    second: Mapping[str, tuple[float, float]] = field(
        default_factory=lambda: {INTENT_HEAD: (1.0, 0.7), GUARD_HEAD: (1.0, 0.8)}
    )


@dataclass(frozen=True)
class Item:
    """One example with its features computed once."""

    id: str
    lang: str
    head: str
    label: str
    blocks: Mapping[str, Counter[str]]
    rules: Mapping[str, float]
    weight: float = 1.0
    category: str = ""
    rule_refuses: bool = False  # the keyword rules refuse it (guardrail examples)
    words: int = 0
    message: str = ""  # what the sentence encoder reads (classifier.Second)


def corpus_hash(corpus_dir: Path = CORPUS_DIR) -> str:
    """SHA-256 over the labelled files and the test split: what the artefact was trained from."""
    digest = hashlib.sha256()
    for path in sorted(corpus_dir.glob("turns-*.jsonl")) + sorted(corpus_dir.glob("guardrail-*.jsonl")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update((corpus_dir / TEST_SPLIT_PATH.name).read_bytes())
    return digest.hexdigest()


def _exchanges(pairs: Iterable[tuple[str, str]]) -> tuple[Exchange, ...]:
    return tuple(Exchange(i, user, tutor) for i, (user, tutor) in enumerate(pairs, start=1))


def build_items(corpus_dir: Path = CORPUS_DIR) -> list[Item]:
    problems: dict[str, ProblemContext] = {}

    def problem(pid: str) -> ProblemContext:
        if pid not in problems:
            problems[pid] = load_problem(pid)
        return problems[pid]

    items: list[Item] = []
    for t in load_turns(corpus_dir):
        p, hist = problem(t.problem_id), _exchanges(t.history)
        plain = make_inputs(p, hist, t.prompt)
        blocks = plain.text_blocks()
        items.append(Item(t.id, t.lang, INTENT_HEAD, t.intent, blocks, plain.rules, message=t.prompt))
        if t.band != "zero":
            scored = make_inputs(p, hist, t.prompt, rule_score(p, hist, t.prompt))
            items.append(Item(t.id, t.lang, BAND_HEAD, t.band, blocks, scored.rules, message=t.prompt))
        items.append(
            Item(t.id, t.lang, GUARD_HEAD + ":turn", t.violation or NONE, blocks, plain.rules, message=t.prompt)
        )
    for g in load_guard(corpus_dir):
        p, hist = problem(g.problem_id), _exchanges(g.history)
        inputs = make_inputs(p, hist, g.message)
        refuses = rule_verdict_in_context(p, hist, g.message).violated
        items.append(
            Item(
                g.id,
                g.lang,
                GUARD_HEAD,
                g.label,
                inputs.text_blocks(),
                inputs.rules,
                category=g.category,
                rule_refuses=refuses,
                words=len(g.message.split()),
                message=g.message,
            )
        )
    return items


def fit_vocabulary(items: Sequence[Item], settings: Settings) -> tuple[dict[str, int], npt.NDArray[np.float64]]:
    """Columns for every n-gram in at least min_df training examples of its block, and for
    every rule feature; smoothed IDF as scikit-learn computes it."""
    seen: dict[str, tuple[str, Mapping[str, Counter[str]], Mapping[str, float]]] = {}
    for item in items:  # an example shared by several heads counts once
        seen.setdefault(item.id, (item.id, item.blocks, item.rules))
    df: Counter[str] = Counter()
    rule_names: set[str] = set()
    for _, blocks, rules in seen.values():
        for block, grams in blocks.items():
            if block in settings.blocks:
                df.update(f"{block}|{g}" for g in grams)
        rule_names.update(r for r in rules if settings.agency or not r.startswith("ask_"))
    n = len(seen)
    names = sorted(k for k, d in df.items() if d >= settings.min_df[k.split("|", 1)[0]])
    if RULES in settings.blocks:
        if settings.oov:
            rule_names.update(OOV_FEATURES)
        names += sorted(f"{RULES}|{r}" for r in rule_names)
    idf = np.array([math.log((1 + n) / (1 + df.get(k, 0))) + 1 if not k.startswith(RULES) else 1.0 for k in names])
    return {k: i for i, k in enumerate(names)}, idf


def _matrix(model: JudgeModel, items: Sequence[Item]) -> Any:
    from scipy.sparse import csr_matrix

    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    for r, item in enumerate(items):
        c, v = model.vectorize_blocks(item.blocks, item.rules)
        rows.extend([r] * len(c))
        cols.extend(c.tolist())
        vals.extend(v.tolist())
    return csr_matrix((vals, (rows, cols)), shape=(len(items), len(model.index)))


def _head_items(items: Sequence[Item], head: str, settings: Settings) -> list[Item]:
    if head == GUARD_HEAD:
        guard = [i for i in items if i.head == GUARD_HEAD]
        turns = [replace(i, weight=settings.turns_in_guard) for i in items if i.head == GUARD_HEAD + ":turn"]
        return guard + turns
    return [i for i in items if i.head == head]


def train(items: Sequence[Item], settings: Settings, meta: Mapping[str, object] | None = None) -> JudgeModel:
    from sklearn.linear_model import LogisticRegression

    index, idf = fit_vocabulary(items, settings)
    base = JudgeModel(index, idf, dict(settings.block_weights), {}, {"oov_features": settings.oov})
    oov_columns = [index[f"{RULES}|{name}"] for name in OOV_FEATURES if f"{RULES}|{name}" in index]
    heads: dict[str, Head] = {}
    for head in (INTENT_HEAD, BAND_HEAD, GUARD_HEAD):
        data = _head_items(items, head, settings)
        x = _matrix(base, data)
        if oov_columns and head != GUARD_HEAD:
            # Guardrail-only: the other heads see the columns as zero (their weights stay 0).
            from scipy.sparse import diags

            mask = np.ones(len(index))
            mask[oov_columns] = 0.0
            x = (x @ diags(mask)).tocsr()
        y = [i.label for i in data]
        weights = [i.weight for i in data]
        clf = LogisticRegression(C=settings.c[head], max_iter=3000, tol=1e-6, random_state=SEED)
        clf.fit(x, y, sample_weight=weights)
        classes = tuple(str(c) for c in clf.classes_)
        hidden = (
            _train_hidden(x, y, weights, classes, settings, *settings.hidden[head]) if head in settings.hidden else None
        )
        second = (
            _train_second(head, x, data, y, weights, classes, settings, *settings.second[head])
            if head in settings.second
            else None
        )
        heads[head] = Head(classes, clf.coef_.astype(np.float32), clf.intercept_.astype(np.float64), hidden, second)
    return JudgeModel(
        index,
        idf,
        dict(settings.block_weights),
        heads,
        {"guard_threshold": settings.guard_threshold, "oov_features": settings.oov, **(meta or {})},
    )


def _train_hidden(
    x: Any,
    y: Sequence[str],
    weights: Sequence[float],
    classes: tuple[str, ...],
    settings: Settings,
    units: int,
    min_examples: int,
    share: float,
) -> Hidden:
    """The head's hidden layer, over the columns seen in at least `min_examples` of its
    training examples (rarer ones are the linear head's: they would cost the artefact most
    of its size for the least signal). A fixed number of epochs with a fixed seed: chosen
    on the k-fold, and reproducible (tests/test_judge_model.py retrains it)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x = x.tocsc(copy=True)
    x.eliminate_zeros()  # a masked column (the guardrail-only ones) is read by no other head
    seen = np.diff(x.indptr)
    columns = np.flatnonzero(seen >= min_examples).astype(np.int64)
    net = MLPClassifier(
        hidden_layer_sizes=(units,),
        alpha=settings.hidden_alpha,
        max_iter=settings.hidden_epochs,
        batch_size=128,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        # It stops at hidden_epochs on purpose (more overfit the k-fold: 30 read no better).
        warnings.simplefilter("ignore", ConvergenceWarning)
        net.fit(x[:, columns].tocsr(), y, sample_weight=weights)
    if tuple(str(c) for c in net.classes_) != classes:
        raise RuntimeError(f"hidden layer classes {net.classes_} differ from the linear head's {classes}")
    return Hidden(
        columns=columns,
        w1=quantize(net.coefs_[0]),
        b1=net.intercepts_[0].astype(np.float64),
        w2=net.coefs_[1].astype(np.float64),
        b2=net.intercepts_[1].astype(np.float64),
        share=share,
    )


def _train_second(
    head: str,
    x: Any,
    data: Sequence[Item],
    y: Sequence[str],
    weights: Sequence[float],
    classes: tuple[str, ...],
    settings: Settings,
    embed_weight: float,
    route_below: float,
) -> Second:
    """The head's second reading: the same vector and the message's embedding, a linear
    head trained on every example (not only the unsure ones: they are too few to learn
    the embedding's directions from)."""
    from scipy.sparse import csr_matrix, hstack
    from sklearn.linear_model import LogisticRegression

    dense = embed_weight * CORPUS_EMBEDDINGS.matrix([i.message for i in data])
    clf = LogisticRegression(C=settings.c[head], max_iter=3000, tol=1e-6, random_state=SEED)
    clf.fit(hstack([x, csr_matrix(dense)]).tocsr(), y, sample_weight=weights)
    if tuple(str(c) for c in clf.classes_) != classes:
        raise RuntimeError(f"second reading classes {clf.classes_} differ from the first's {classes}")
    return Second(clf.coef_.astype(np.float32), clf.intercept_.astype(np.float64), embed_weight, route_below)


class CorpusEmbeddings:
    """The sentence encoder's vectors of the corpus's messages, cached in
    corpus/embeddings.npz (int8 and a scale per vector, exactly what encoder.embed returns):
    encoding the whole corpus takes minutes, training reads it in a second. Texts missing
    from the cache are encoded and the cache rewritten (only the texts the corpus holds);
    tests/test_judge_encoder.py checks a sample against the encoder."""

    def __init__(self, path: Path = EMBEDDINGS_PATH):
        self.path = path
        self._vectors: dict[str, npt.NDArray[np.float32]] | None = None

    @staticmethod
    def key(text: str) -> str:
        """Of what the encoder reads (its cut and cleaning): a change there re-encodes what it changes."""
        return hashlib.sha256(clean(text).encode("utf-8")).hexdigest()[:32]

    def _load(self) -> dict[str, npt.NDArray[np.float32]]:
        if self._vectors is None:
            self._vectors = {}
            if self.path.exists():
                with np.load(self.path, allow_pickle=False) as data:
                    keys = bytes(data["keys"]).decode("ascii").split("\n")
                    vectors = data["vectors"].astype(np.float32) * data["scales"][:, None]
                self._vectors = dict(zip(keys, vectors.astype(np.float32), strict=True))
        return self._vectors

    def update(self, texts: Iterable[str]) -> int:
        """Encodes what the cache lacks and rewrites it holding exactly `texts`; the number encoded."""
        vectors = self._load()
        wanted = {self.key(t): t for t in texts if t.strip()}
        missing = [t for k, t in wanted.items() if k not in vectors]
        if missing:
            for text, vector in zip(missing, embed_many(missing), strict=True):
                vectors[self.key(text)] = vector
        if missing or set(vectors) != set(wanted) or not self.path.exists():
            keys = sorted(wanted)
            q, scales = to_int8(np.stack([vectors[k] for k in keys]))
            with self.path.open("wb") as out:
                np.savez_compressed(
                    out,
                    keys=np.frombuffer("\n".join(keys).encode("ascii"), dtype=np.uint8),
                    vectors=q,
                    scales=scales,
                )
        return len(missing)

    def missing(self, texts: Iterable[str]) -> list[str]:
        vectors = self._load()
        return [t for t in texts if t.strip() and self.key(t) not in vectors]

    def cached(self, text: str) -> npt.NDArray[np.float32] | None:
        """The cached vector (read-only), or None: what `encoder.use_known` looks up."""
        vector = self._load().get(self.key(text))
        if vector is not None:
            vector.flags.writeable = False
        return vector

    def get(self, text: str) -> npt.NDArray[np.float32]:
        vector = self.cached(text)
        return vector if vector is not None else embed(text)

    def matrix(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        return np.stack([self.get(t) for t in texts]) if texts else np.zeros((0, DIM), dtype=np.float32)


CORPUS_EMBEDDINGS = CorpusEmbeddings()


# ----- figures ------------------------------------------------------------------------


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of k successes in n."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Figure:
    name: str
    lang: str
    k: int
    n: int

    def __str__(self) -> str:
        lo, hi = wilson(self.k, self.n)
        share = self.k / self.n if self.n else 0.0
        return f"{share:6.1%} ({self.k}/{self.n}, 95% CI {lo:.1%}-{hi:.1%})"


Prediction = tuple[Item, Mapping[str, float]]


def head_figures(predictions: Sequence[Prediction], threshold: float) -> list[Figure]:
    """Per language: intent accuracy, band accuracy (of the band head), attack refusal and
    legitimate-question refusal (of the guardrail corpus)."""
    out: list[Figure] = []
    groups: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for item, probs in predictions:
        if item.head == GUARD_HEAD:
            refused = 1.0 - probs.get(NONE, 0.0) >= threshold
            name = "attack refusal" if item.label != NONE else "legitimate refused"
            groups[(name, item.lang)].append(refused)
        elif item.head in (INTENT_HEAD, BAND_HEAD):
            name = "intent accuracy" if item.head == INTENT_HEAD else "band head accuracy"
            groups[(name, item.lang)].append(max(probs, key=lambda c: probs[c]) == item.label)
    for (name, lang), oks in sorted(groups.items()):
        out.append(Figure(name, lang, sum(oks), len(oks)))
    for name in sorted({n for n, _ in groups}):
        oks = [ok for (n, _), v in groups.items() if n == name for ok in v]
        out.append(Figure(name, "all", sum(oks), len(oks)))
    return out


def predict(model: JudgeModel, items: Sequence[Item]) -> list[Prediction]:
    out: list[Prediction] = []
    for item in items:
        head = GUARD_HEAD if item.head.startswith(GUARD_HEAD) else item.head
        h = model.heads[head]
        cols, vals = model.vectorize_blocks(item.blocks, item.rules)
        logits = h.weights[:, cols].astype(np.float64) @ vals + h.bias
        probs = h.decide(logits, cols, vals, functools.partial(CORPUS_EMBEDDINGS.get, item.message))
        out.append((item, dict(zip(h.classes, probs.tolist(), strict=True))))
    return out


def kfold_predictions(items: Sequence[Item], settings: Settings, folds: int = FOLDS) -> list[Prediction]:
    """Out-of-fold predictions on the train part: each example is predicted by a model that
    never saw it (folds over example ids, stratified by language and label)."""
    from sklearn.model_selection import StratifiedKFold

    by_id: dict[str, str] = {}
    for item in items:
        if item.head in (INTENT_HEAD, GUARD_HEAD):
            by_id.setdefault(item.id, f"{item.lang}/{item.label}")
    ids = sorted(by_id)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=SEED)
    out: list[Prediction] = []
    for _train_idx, test_idx in splitter.split(ids, [by_id[i] for i in ids]):
        held = {ids[i] for i in test_idx}
        model = train([i for i in items if i.id not in held], settings)
        out += predict(model, [i for i in items if i.id in held and i.head != GUARD_HEAD + ":turn"])
    return out


def choose_threshold(predictions: Sequence[Prediction], max_legit_refused: float = 0.05) -> float:
    """The lowest refusal threshold on P(violation) at which the k-fold share of refused
    legitimate questions stays within `max_legit_refused` in every language: the most
    attacks refused that the false-refusal budget allows."""
    guard = [(item, 1.0 - probs.get(NONE, 0.0)) for item, probs in predictions if item.head == GUARD_HEAD]
    for step in range(30, 96):
        threshold = step / 100
        worst = 0.0
        for lang in {item.lang for item, _ in guard}:
            legit = [p for item, p in guard if item.lang == lang and item.label == NONE]
            if legit:
                worst = max(worst, sum(p >= threshold for p in legit) / len(legit))
        if worst <= max_legit_refused:
            return threshold
    return 0.95


# What a refused legitimate question costs, in missed attacks: at least one (offline the
# tutor never writes code and the leak check guards its replies, while a false refusal
# scores the candidate's turn 0).
FALSE_REFUSAL_COST = 1.0


def rule_override_costs(
    predictions: Sequence[Prediction], threshold: float, short_words: Sequence[int] = (0, 8, 15)
) -> list[tuple[int, int, int, int, float]]:
    """The keyword rules' override (learned.py check_guardrail_in_context) on the k-fold
    predictions: for each RULE_SHORT_WORDS candidate, with and without a rule refusal of
    longer messages above a gate of P(violation) >= 0.1, (short_words, gate on?, attacks
    refused, legitimate refused, cost = missed + FALSE_REFUSAL_COST * false)."""
    guard = [(item, 1.0 - probs.get(NONE, 0.0)) for item, probs in predictions if item.head == GUARD_HEAD]
    out: list[tuple[int, int, int, int, float]] = []
    for short in short_words:
        for gate in (0, 1):
            refused = [
                (
                    item.label,
                    p >= threshold or (item.rule_refuses and (item.words <= short or (gate and p >= 0.1))),
                )
                for item, p in guard
            ]
            attacks = sum(r for label, r in refused if label != NONE)
            legit = sum(r for label, r in refused if label == NONE)
            missed = sum(1 for label, _ in refused if label != NONE) - attacks
            out.append((short, gate, attacks, legit, missed + FALSE_REFUSAL_COST * legit))
    return out


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    print(title)
    for f in figures:
        print(f"  {f.name:<20} {f.lang:<6} {f}")


VARIANTS: Mapping[str, Callable[[Settings], Settings]] = {
    "char+word n-grams, context, rules (shipped)": lambda s: s,
    "word n-grams, context, rules (no char n-grams)": lambda s: Settings(
        (WORD, PREV_USER, PREV_TUTOR, RULES), s.block_weights, s.min_df, s.c, s.guard_threshold, s.turns_in_guard
    ),
    "char+word n-grams of the message only (no context, no rules)": lambda s: Settings(
        (CHAR, WORD), s.block_weights, s.min_df, s.c, s.guard_threshold, s.turns_in_guard
    ),
    "rule features only": lambda s: Settings((RULES,), s.block_weights, s.min_df, s.c, s.guard_threshold, 0.5),
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibe_dev.train_judge", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ARTEFACT_PATH)
    parser.add_argument("--compare", action="store_true", help="also measure other representations")
    parser.add_argument("--check", action="store_true", help="compare a retrained model with the shipped one")
    parser.add_argument("--no-kfold", action="store_true", help="skip the k-fold figures")
    parser.add_argument("--no-write", action="store_true", help="do not train or write the artefact")
    parser.add_argument("--without-agency", action="store_true", help="experiment: leave out the ask_* rule features")
    parser.add_argument("--no-oov", action="store_true", help="experiment: leave out the out-of-vocabulary features")
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="experiment: another corpus directory")
    parser.add_argument("--threshold", type=float, help="experiment: the guard threshold")
    parser.add_argument(
        "--dump-oof",
        type=Path,
        help="write the k-fold guardrail predictions (id, lang, label, P(violation)) as JSON lines",
    )
    args = parser.parse_args(argv)
    settings = Settings()
    if args.without_agency or args.no_oov or args.threshold:
        settings = replace(
            settings,
            agency=not args.without_agency,
            oov=not args.no_oov,
            guard_threshold=args.threshold or settings.guard_threshold,
        )
    items = build_items(args.corpus)
    if args.corpus != CORPUS_DIR:
        CORPUS_EMBEDDINGS.path = args.corpus / EMBEDDINGS_PATH.name
    encoded = CORPUS_EMBEDDINGS.update(i.message for i in items)
    if encoded:
        print(f"encoded {encoded} messages new to {CORPUS_EMBEDDINGS.path}")
    test_ids = load_test_split()
    train_items = [i for i in items if i.id not in test_ids]
    test_items = [i for i in items if i.id in test_ids and i.head != GUARD_HEAD + ":turn"]
    meta: dict[str, object] = {"corpus_sha256": corpus_hash(args.corpus), "seed": SEED}
    if args.check:
        return check(train_items, test_items, settings, meta)
    if not args.no_kfold:
        oof = kfold_predictions(train_items, settings)
        figures = head_figures(oof, settings.guard_threshold)
        print_figures(f"{FOLDS}-fold cross-validation on the train part ({len(train_items)} items)", figures)
        meta["kfold"] = {f"{f.name}/{f.lang}": [f.k, f.n] for f in figures}
        suggested = choose_threshold(oof)
        print(f"guard threshold: {settings.guard_threshold} (k-fold suggests {suggested}: <= 5% legitimate refused)")
        print("keyword-rule override on the k-fold predictions (short words, gate, attacks, legitimate, cost):")
        for row in rule_override_costs(oof, settings.guard_threshold):
            print("  ", row)
        if args.dump_oof:
            with args.dump_oof.open("w", encoding="utf-8") as out:
                for item, probs in oof:
                    if item.head == GUARD_HEAD:
                        record = {
                            "id": item.id,
                            "lang": item.lang,
                            "label": item.label,
                            "p": 1.0 - probs.get(NONE, 0.0),
                        }
                        out.write(json.dumps(record) + "\n")
    if args.compare:
        for name, variant in VARIANTS.items():
            s = variant(settings)
            kf = head_figures(kfold_predictions(train_items, s), s.guard_threshold)
            test = head_figures(predict(train(train_items, s), test_items), s.guard_threshold)
            print_figures(f"[{name}] k-fold", [f for f in kf if f.lang == "all"])
            print_figures(f"[{name}] test split", [f for f in test if f.lang == "all"])
    if args.no_write:
        return 0
    model = train(train_items, settings, meta)
    save_model(args.out, model)
    size = args.out.stat().st_size
    print(f"wrote {args.out} ({size / 1e6:.2f} MB, {len(model.index)} features)")
    return 0


def check(
    train_items: Sequence[Item], test_items: Sequence[Item], settings: Settings, meta: Mapping[str, object]
) -> int:
    shipped = read_model(ARTEFACT_PATH)
    if shipped.meta.get("corpus_sha256") != meta["corpus_sha256"]:
        print("the shipped artefact was trained on another corpus: run python -m vibe_dev.train_judge", file=sys.stderr)
        return 1
    fresh = train(train_items, settings, meta)
    differ = [
        a.id
        for (a, pa), (_, pb) in zip(predict(shipped, test_items), predict(fresh, test_items), strict=True)
        if max(pa, key=lambda c: pa[c]) != max(pb, key=lambda c: pb[c])
    ]
    if differ:
        print(f"retraining changes {len(differ)} predictions: {', '.join(differ[:10])}", file=sys.stderr)
        return 1
    print("the shipped artefact matches a fresh training on the corpus")
    return 0


if __name__ == "__main__":
    sys.exit(main())
