"""Intake: pick the workflow for a free-text request, without an LLM.

A nearest-centroid classifier over TF-IDF features, trained at load from the workflow
definitions' example requests:

* **normalise** — lowercase; order ids (``ORD-1234``) become ``<order_id>``, ticket ids
  (``TCK-2001``) ``<ticket_id>``, other ids ``<ref_id>``, money (``40 EUR``, ``$15.99``)
  ``<amount>``, other numbers ``<number>``, e-mail addresses and URLs ``<email>``/``<url>``;
* **features** — word unigrams and bigrams (function words dropped) and character 3- to 5-grams
  inside words (so "refunded" still meets "refund"), each weighted by sublinear TF times smoothed
  IDF; the two groups are normalised separately and count half each, so the cosine of two
  requests is the mean of their word and character cosines. Features never seen in training
  keep the highest IDF: they make a request *less* like every workflow instead of vanishing;
* **scores** — cosine similarity to each workflow's centroid (the mean of its examples);
* **confidence** — a softmax over ``score / T`` with one extra "none of these" entry at
  ``score = s0``; ``confidence`` is the top workflow's share, ``ranked`` the top three. ``T`` and
  ``s0`` are fitted on the training set by leave-one-out log loss: each example must come out as
  its own workflow (scored against the others' examples) *and* as "none" when its own workflow
  is taken away (a stand-in for requests no workflow fits). A request that matches nothing
  better than a wrong workflow usually would leaves most probability on "none", so its
  confidence is low and :meth:`Intake.choose` asks the requester (or hands over to the planner).

Pure Python and deterministic (ties break on the ref); classifying one request takes a fraction
of a millisecond (see ``python -m bench.intake``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from orchestrator.errors import Unprocessable

if TYPE_CHECKING:
    from orchestrator.catalog.registry import Catalog

__all__ = ["Choice", "Intake", "IntakeError", "IntakeResult", "NoWorkflowRegistered", "normalise"]

TOP_K = 3
DEFAULT_THRESHOLD = 0.55
_WORD_WEIGHT = 0.5  # share of the word n-grams in the cosine; the character n-grams get the rest
_CHAR_NGRAMS = (3, 4, 5)
_TEMPERATURES = tuple(0.005 * 1.3**i for i in range(20))  # 0.005 .. ~0.73, geometric
_NONE_STEPS = 40  # candidate "none" scores: 0 .. the best leave-one-out score, in 40 steps

Vector = dict[str, float]


class IntakeError(ValueError):
    """Intake cannot be trained from what it was given (no examples, a single workflow...)."""


class NoWorkflowRegistered(Unprocessable):
    """The catalog holds no workflow, so there is nothing to pick (422)."""

    title = "No workflow registered"


@dataclass(frozen=True)
class IntakeResult:
    """The classifier's verdict: the best ref, its probability and the top three with theirs."""

    ref: str
    confidence: float
    ranked: list[tuple[str, float]]


@dataclass(frozen=True)
class Choice:
    """What to do with a request: run ``ref`` (picked / planner) or offer ``options`` (ask).

    ``options`` always holds the top three ``(ref, probability)`` so a UI can show them.
    """

    kind: Literal["picked", "ask", "planner"]
    ref: str | None
    confidence: float
    options: list[tuple[str, float]]


# -- normalisation --------------------------------------------------------------------------------

_CURRENCY = r"(?:eur|euros?|usd|dollars?|gbp|pounds?|chf|sek|nok|dkk|jpy|inr|bucks)"
_NUMBER = r"\d+(?:[.,]\d+)*(?:\s?[km]\b)?"
_SUBSTITUTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"https?://\S+|www\.\S+"), " <url> "),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), " <email> "),
    (re.compile(r"\bord[-_ #]?\d+\b"), " <order_id> "),
    (re.compile(r"\b(?:tck|ticket)[-_#]\d+\b"), " <ticket_id> "),
    (re.compile(r"\b[a-z]{2,6}[-_#]\d{2,}\b"), " <ref_id> "),
    (re.compile(rf"[$€£¥₹]\s?{_NUMBER}"), " <amount> "),
    (re.compile(rf"\b{_NUMBER}\s?(?:{_CURRENCY}\b|[$€£¥₹])"), " <amount> "),
    (re.compile(rf"\b{_CURRENCY}\s?{_NUMBER}"), " <amount> "),
    (re.compile(r"\b\d+(?:[.,]\d+)*(?:st|nd|rd|th|k|m|%)?(?!\w)%?"), " <number> "),
)
_TOKEN = re.compile(r"<[a-z_]+>|[a-z0-9]+")

# Function words only: words like "back", "twice", "not" or "all" carry intent here.
_STOPWORDS = frozenset(
    """a about an and are as at be been being but by can could did do does doing for from had has
    have having he her here hers him his how i if in into is it its itself just let me my myself of
    on or our ours please pls she so some than that the their theirs them then there these they
    this those to us was we were what when where which while who whom why will with would you your
    yours yourself hi hello hey thanks thank re""".split()
)


def normalise(text: str) -> str:
    """Lowercase and replace ids, amounts, numbers, e-mails and URLs by placeholder tokens."""
    out = text.lower().replace("\u2019", "'")
    for pattern, token in _SUBSTITUTIONS:
        out = pattern.sub(token, out)
    return " ".join(out.split())


def _tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(normalise(text)) if len(t) > 1 and t not in _STOPWORDS]


def _features(text: str) -> tuple[Counter[str], Counter[str]]:
    words = _tokens(text)
    word_feats: Counter[str] = Counter(words)
    word_feats.update(f"{a} {b}" for a, b in pairwise(words))
    char_feats: Counter[str] = Counter()
    for word in words:
        if word.startswith("<"):
            continue  # placeholders are whole tokens; their spelling means nothing
        padded = f" {word} "
        for n in _CHAR_NGRAMS:
            char_feats.update(padded[i : i + n] for i in range(len(padded) - n + 1))
    return word_feats, char_feats


# -- the model ------------------------------------------------------------------------------------


class Intake:
    """A trained intake classifier. Build it with :meth:`train` or :meth:`from_catalog`."""

    def __init__(
        self,
        refs: list[str],
        idf: tuple[dict[str, float], dict[str, float]],
        unseen_idf: float,
        centroids: dict[str, Vector],
        temperature: float,
        none_score: float,
        n_examples: int,
    ) -> None:
        self.refs = refs
        self._idf = idf
        self._unseen_idf = unseen_idf
        self._centroids = centroids
        self.temperature = temperature
        self.none_score = none_score
        self.n_examples = n_examples

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def train(cls, examples: Mapping[str, Iterable[str]]) -> Intake:
        """Train on ``{ref: [example request, ...]}``; needs at least two refs with examples."""
        data = {ref: [t for t in texts if t and t.strip()] for ref, texts in sorted(examples.items())}
        empty = [ref for ref, texts in data.items() if not texts]
        if empty:
            raise IntakeError(
                f"intake needs example requests for every workflow; none for {', '.join(empty)}"
            )
        if len(data) < 2:
            raise IntakeError(
                f"intake needs example requests for at least two workflows to choose between; got {len(data)}"
            )
        feats = {ref: [_features(t) for t in texts] for ref, texts in data.items()}
        docs = [f for fs in feats.values() for f in fs]
        n_docs = len(docs)
        idf = (_idf((w for w, _ in docs), n_docs), _idf((c for _, c in docs), n_docs))
        unseen_idf = math.log(1 + n_docs) + 1.0
        model = cls(sorted(data), idf, unseen_idf, {}, 1.0, 0.0, n_docs)
        vectors = {ref: [model._vector(f) for f in fs] for ref, fs in feats.items()}
        sums = {ref: _sum(vs) for ref, vs in vectors.items()}
        model._centroids = {ref: _unit(s) for ref, s in sums.items()}
        model.temperature, model.none_score = model._calibrate(vectors, sums)
        return model

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> Intake:
        """Train on the latest version of every registered workflow that has examples.

        Refs are ``name@version`` (as in ``catalog.workflow_refs()``), highest version per name;
        workflows without examples are left out (catalog validation reports them). With fewer than
        two such workflows (an empty catalog, say) there is nothing to learn: see :meth:`untrained`.
        """
        examples: dict[str, list[str]] = {}
        latest: set[str] = set()
        for ref in catalog.workflow_refs():
            definition = catalog.workflows[ref.split("@", 1)[0]]  # a bare name is the latest version
            latest.add(definition.ref)
            if definition.examples:
                examples[definition.ref] = list(definition.examples)
        if len(examples) < 2:
            return cls.untrained(latest)
        return cls.train(examples)

    @classmethod
    def untrained(cls, refs: Iterable[str]) -> Intake:
        """Intake that cannot choose: it offers `refs` with no confidence, so the requester names
        the workflow; with no ref at all it raises :class:`NoWorkflowRegistered`."""
        return cls(sorted(set(refs)), ({}, {}), 1.0, {}, 1.0, 1.0, 0)

    # -- use ----------------------------------------------------------------------------------------
    def scores(self, text: str) -> dict[str, float]:
        """Cosine similarity of the request to each workflow (0 when it shares nothing)."""
        vec = self._vector(_features(text))
        return {ref: _dot(vec, centroid) for ref, centroid in self._centroids.items()}

    def classify(self, text: str) -> IntakeResult:
        if not self._centroids:  # untrained
            if not self.refs:
                raise NoWorkflowRegistered(
                    "No workflow is registered, so there is nothing to run. Add a catalog package to "
                    "FRONTDESK_CATALOG_PACKAGES and restart the API and the workers."
                )
            ranked = [(ref, 0.0) for ref in self.refs[:TOP_K]]
            return IntakeResult(ref=ranked[0][0], confidence=0.0, ranked=ranked)
        probs = self._probabilities(self.scores(text))
        ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
        return IntakeResult(ref=ranked[0][0], confidence=ranked[0][1], ranked=ranked)

    def choose(
        self, text: str, threshold: float = DEFAULT_THRESHOLD, planner_ref: str | None = None
    ) -> Choice:
        """Pick a workflow at or above ``threshold``; below it hand over to ``planner_ref`` if the
        caller allows a planner fallback, else ask the requester to choose from the top three."""
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {threshold}")
        result = self.classify(text)
        if result.confidence >= threshold:
            return Choice("picked", result.ref, result.confidence, result.ranked)
        if planner_ref is not None:
            return Choice("planner", planner_ref, result.confidence, result.ranked)
        return Choice("ask", None, result.confidence, result.ranked)

    # -- internals ----------------------------------------------------------------------------------
    def _vector(self, feats: tuple[Counter[str], Counter[str]]) -> Vector:
        out: Vector = {}
        for prefix, counts, idf, share in (
            ("w:", feats[0], self._idf[0], _WORD_WEIGHT),
            ("c:", feats[1], self._idf[1], 1.0 - _WORD_WEIGHT),
        ):
            part = {f: (1.0 + math.log(n)) * idf.get(f, self._unseen_idf) for f, n in counts.items()}
            norm = math.sqrt(sum(v * v for v in part.values()))
            if norm:
                scale = math.sqrt(share) / norm
                out.update((prefix + f, v * scale) for f, v in part.items())
        return out

    def _probabilities(self, scores: Mapping[str, float]) -> dict[str, float]:
        t = self.temperature
        top = max(max(scores.values()), self.none_score)
        weights = {ref: math.exp((s - top) / t) for ref, s in scores.items()}
        total = sum(weights.values()) + math.exp((self.none_score - top) / t)
        return {ref: w / total for ref, w in weights.items()}

    def _calibrate(self, vectors: dict[str, list[Vector]], sums: dict[str, Vector]) -> tuple[float, float]:
        """Fit the temperature and the "none" score by leave-one-out over the training examples.

        Every example is scored twice: against the other examples (its own workflow's centroid
        rebuilt without it), where the right answer is its workflow; and against the *other*
        workflows only, as if its own were not in the catalog, where the right answer is "none".
        The pair minimising the log loss of both is kept, so the "none" entry is an estimate of
        how well a request scores against workflows that do not fit it.
        """
        cases: list[tuple[list[float], int]] = []  # (scores, index of the right answer or -1 for none)
        for ref, vecs in vectors.items():
            for vec in vecs:
                rest = {f: v - vec.get(f, 0.0) for f, v in sums[ref].items()} if len(vecs) > 1 else {}
                own = _dot(vec, _unit(rest))
                others = [_dot(vec, c) for r, c in self._centroids.items() if r != ref]
                cases.append(([own, *others], 0))
                cases.append((others, -1))
        ceiling = max(max(scores) for scores, _ in cases) or 1.0
        none_scores = [ceiling * i / _NONE_STEPS for i in range(_NONE_STEPS + 1)]
        best = (math.inf, _TEMPERATURES[0], 0.0)
        for temperature in _TEMPERATURES:
            for none_score in none_scores:
                loss = sum(_log_loss(scores, answer, none_score, temperature) for scores, answer in cases)
                if loss < best[0] - 1e-12:
                    best = (loss, temperature, none_score)
        return best[1], best[2]


def _log_loss(scores: list[float], answer: int, none_score: float, temperature: float) -> float:
    top = max(max(scores), none_score)
    total = math.exp((none_score - top) / temperature)
    for s in scores:
        total += math.exp((s - top) / temperature)
    right = none_score if answer < 0 else scores[answer]
    return math.log(total) - (right - top) / temperature


def _idf(docs: Iterable[Counter[str]], n_docs: int) -> dict[str, float]:
    df: Counter[str] = Counter()
    for doc in docs:
        df.update(doc.keys())
    return {f: math.log((1 + n_docs) / (1 + n)) + 1.0 for f, n in df.items()}


def _sum(vectors: list[Vector]) -> Vector:
    out: Vector = {}
    for vec in vectors:
        for f, v in vec.items():
            out[f] = out.get(f, 0.0) + v
    return out


def _unit(vec: Vector) -> Vector:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {f: v / norm for f, v in vec.items()} if norm > 1e-12 else {}


def _dot(a: Vector, b: Vector) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(f, 0.0) for f, v in a.items())
