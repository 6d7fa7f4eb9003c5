"""Demo skills of the research-brief sample: the planner, the researchers and the brief writer.

Deterministic and pure (no I/O). The planner decomposes the request into two or three
sub-questions, one per relevant researcher, and ends the plan with the brief writer. Each
researcher answers its sub-question with a note; the writer synthesises the notes it finds in the
earlier results of the task (``Results so far:`` followed by JSON keyed by step name; the older
``Result of the previous step:`` form is read too). The text is placeholder analysis from the
demo model, labelled as such: it is not research.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.demo.chat import REPAIR_PREFIX, Reply, clip, sentences, text_of

KINDS = ("market", "technology", "finance")
WRITER = "brief_writer"
DEFAULT_AGENTS = {
    "market": "market_researcher@1",
    "technology": "technology_researcher@1",
    "finance": "finance_researcher@1",
    WRITER: "brief_writer@1",
}
SUB_QUESTION = "Sub-question:"
TOPIC = "Topic:"
DEMO_NOTE = "Drafted by the Frontdesk demo model: deterministic placeholder text, not research."

_REF_RE = re.compile(r"\b([a-z][a-z0-9_]{0,63})@(\d+(?:\.\d+)*)\b")
_MARKER_RE = re.compile(r"\[[a-z]+:[^\]\s]*\]")
_RESULTS_RE = re.compile(
    r"(Results so far|Results of (?:the )?(?:earlier|previous) steps|Result of the previous step)\s*:",
    re.IGNORECASE,
)
# What the engine appends to the task text: earlier results, its part of a plan, repair notes.
_SECTION_RE = re.compile(
    r"\n\s*\n\s*(?:Results so far\s*:|Result of the previous step\s*:|Structured input\s*:|"
    r"Your part of the plan\s*:|Your previous answer was not valid|An earlier attempt was not accepted)"
)
_TOPIC_RES = (
    re.compile(
        r"\b(?:brief|briefing|report|overview|memo|analysis|research|study|note|look)\s*"
        r"(?::|\s(?:on|about|into|of|for|at|regarding)\s)\s*(?P<topic>.+)",
        re.IGNORECASE,
    ),
    re.compile(
        r"^(?:please\s+)?(?:research|investigate|analy[sz]e|explore|examine|assess|study|compare|"
        r"look into|what(?:'s| is| are))\s+(?P<topic>.+)",
        re.IGNORECASE,
    ),
)
# Where the subject ends and the requester's wishes about the brief begin.
_TOPIC_END_RE = re.compile(
    r"(?:\s*[:;]\s|,\s*(?:with|including|and|so|for|please)\b|"
    r"\s+and\s+(?:write|recommend|tell|summari[sz]e|what|give|send|prepare|report)\b).*$",
    re.IGNORECASE,
)
_CORE_RE = re.compile(
    r"^(?:the\s+)?(?:current\s+|competitive\s+)?"
    r"(?:market|industry|business|sector|landscape|state|outlook|future|opportunity)\s+(?:for|of|in)\s+",
    re.IGNORECASE,
)
_KEYWORDS = {
    "market": (
        r"markets?|demand|customers?|competit\w*|share|players?|segments?|growth|sales|adopt\w*|"
        r"consumers?|buyers?|rivals?"
    ),
    "technology": (
        r"technolog\w*|technical|tech|engineering|products?|software|hardware|innovation|r&d|"
        r"patents?|efficiency|ai|platforms?|standards?"
    ),
    "finance": (
        r"financ\w*|costs?|pric(?:e|es|ing)|invest(?:ment|ments|ors?|ing)|revenues?|profit\w*|"
        r"margins?|funding|valuation|"
        r"subsid\w*|economics|budgets?|roi|payback|capex|opex"
    ),
}
_KEYWORD_RES = {kind: re.compile(rf"\b(?:{words})\b", re.IGNORECASE) for kind, words in _KEYWORDS.items()}


# --- reading the request ------------------------------------------------------------------------


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body.get("messages") or [] if isinstance(m, dict)]


def _texts(body: dict[str, Any], role: str) -> list[str]:
    return [text_of(m.get("content")) for m in _messages(body) if m.get("role") == role]


def request_text(body: dict[str, Any]) -> str:
    """The task as the requester wrote it: the first user message, without the engine's
    appended sections (earlier results, structured input) and without test markers."""
    users = [t for t in _texts(body, "user") if not t.lstrip().startswith(REPAIR_PREFIX)]
    first = users[0] if users else ""
    first = _SECTION_RE.split(first, maxsplit=1)[0]
    return " ".join(_MARKER_RE.sub(" ", first).split())


def topic_of(text: str) -> str:
    """The subject of a research request, e.g. "the market for heat pumps in Germany"."""
    first = (sentences(text) or [text])[0].strip()
    for pattern in _TOPIC_RES:
        match = pattern.search(first)
        if match:
            first = match.group("topic")
            break
    topic = _TOPIC_END_RE.sub("", first.strip()).strip().rstrip(".!?;:,").strip()
    return clip(topic, 160) or "the requested subject"


def core_of(topic: str) -> str:
    """The topic without a leading "the market for", so questions read naturally."""
    return _CORE_RE.sub("", topic, count=1) or topic


def earlier_results(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every JSON object the engine passed on from earlier steps, as (key path, object), found
    after a results header in a user or system message. Tolerant of the exact framing."""
    decoder = json.JSONDecoder()
    found: list[tuple[str, dict[str, Any]]] = []
    for text in _texts(body, "user") + _texts(body, "system"):
        for header in _RESULTS_RE.finditer(text):
            start = text.find("{", header.end())
            if start < 0:
                continue
            try:
                value, _ = decoder.raw_decode(text, start)
            except ValueError:
                continue
            _walk(value, "", found, 0)
    return found


def _walk(value: Any, path: str, found: list[tuple[str, dict[str, Any]]], depth: int) -> None:
    if depth > 6:
        return
    if isinstance(value, dict):
        found.append((path, value))
        for key, item in value.items():
            _walk(item, f"{path}.{key}" if path else str(key), found, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found, depth + 1)


def offered_agents(body: dict[str, Any]) -> list[str]:
    """Agent refs (name@version) the planner was told about: in the system prompt and the
    request, never in its own earlier answers or in a repair message (which may quote the
    refused plan's unknown agents)."""
    users = [t for t in _texts(body, "user") if not t.lstrip().startswith(REPAIR_PREFIX)]
    texts = _texts(body, "system") + users[:1]
    refs: list[str] = []
    for text in texts:
        for name, version in _REF_RE.findall(text):
            ref = f"{name}@{version}"
            if ref not in refs:
                refs.append(ref)
    return refs


def kind_of(text: str) -> str | None:
    """market | technology | finance, from an agent name, a step name or a prompt."""
    lowered = text.lower()
    for kind in KINDS:
        if f"{kind} research" in lowered or f"{kind}_research" in lowered:
            return kind
    return None


# --- the planner --------------------------------------------------------------------------------


def _agents_for_plan(body: dict[str, Any]) -> dict[str, str] | None:
    refs = offered_agents(body)
    named = {r for r in refs if r.split("@", 1)[0].endswith(("_researcher", "_writer"))}
    if not named:
        if any(r.split("@", 1)[0].endswith("_planner") for r in refs) or not refs:
            return dict(DEFAULT_AGENTS)  # told of no specialists: assume the sample's
        return None  # a planner for some other team's agents: not this skill's business
    agents: dict[str, str] = {}
    for ref in refs:
        name = ref.split("@", 1)[0]
        kind = kind_of(name) if name.endswith("_researcher") else None
        if kind and kind not in agents:
            agents[kind] = ref
        elif name == WRITER and WRITER not in agents:
            agents[WRITER] = ref
    if WRITER not in agents:
        writer = next((r for r in refs if r.split("@", 1)[0].endswith("_writer")), None)
        if writer is None:
            return None
        agents[WRITER] = writer
    return agents if any(k in agents for k in KINDS) else None


def choose_kinds(text: str, available: list[str]) -> list[str]:
    """The researchers a request needs: every specialism it mentions, at least two, at most three."""
    chosen = [k for k in KINDS if k in available and _KEYWORD_RES[k].search(text)]
    for kind in KINDS:
        if len(chosen) >= 2:
            break
        if kind in available and kind not in chosen:
            chosen.append(kind)
    return sorted(chosen, key=KINDS.index)[:3]


def sub_question(kind: str, topic: str) -> str:
    core = core_of(topic)
    return {
        "market": f"What do demand, customers and competition look like for {core}?",
        "technology": f"Which technologies underpin {core}, how mature are they and what is changing?",
        "finance": f"What are the costs, prices, margins and funding conditions for {core}?",
    }.get(kind, f"What matters most about {core}?")


def plan_answer(body: dict[str, Any]) -> dict[str, Any] | None:
    agents = _agents_for_plan(body)
    if agents is None:
        return None
    text = request_text(body)
    topic = topic_of(text)
    kinds = choose_kinds(text, [k for k in KINDS if k in agents])
    steps = [
        {
            "name": f"{kind}_research",
            "agent": agents[kind],
            "instructions": f"{TOPIC} {topic}\n{SUB_QUESTION} {sub_question(kind, topic)}",
            "tools": [],
        }
        for kind in kinds
    ]
    steps.append(
        {
            "name": "write_brief",
            "agent": agents[WRITER],
            "instructions": (
                f"{TOPIC} {topic}\nSynthesise the research notes in the results so far into a brief: "
                "a title, a short summary, one section per note and the open questions."
            ),
            "tools": [],
        }
    )
    rationale = (
        f"The request about {topic} needs {' and '.join(kinds)} research: each researcher answers "
        f"one sub-question, then {agents[WRITER]} synthesises their notes into the brief."
    )
    return {"rationale": clip(rationale, 2000), "steps": steps}


def plan_skill(body: dict[str, Any]) -> Reply | None:
    answer = plan_answer(body)
    return None if answer is None else Reply(content=json.dumps(answer))


# --- the researchers ----------------------------------------------------------------------------

_FINDINGS = {
    "market": (
        "Demand for {core} is best sized bottom-up (buyers x purchase frequency x price) and "
        "checked against industry association figures.",
        "The competitive field for {core} splits into established incumbents and specialised "
        "newcomers; list the five largest by share before drawing conclusions.",
        "Customer segments for {core} differ in willingness to pay; start with the segment with "
        "the clearest need and budget.",
    ),
    "technology": (
        "The core technology behind {core} is established; differentiation comes from efficiency, "
        "integration and service.",
        "Technical risks for {core}: supply of critical components, skilled installers and "
        "interoperability standards.",
        "Watch the next product generation and standards changes for {core} over the next 24 months.",
    ),
    "finance": (
        "Adoption of {core} turns on up-front cost against running savings; model the payback in years.",
        "Public incentives and financing terms can move demand for {core} more than list prices do.",
        "Margins for {core} depend on the channel: direct sales and service contracts earn more "
        "than wholesale.",
    ),
}
_GENERIC_FINDINGS = (
    "The sub-question about {core} needs primary sources before any figure is quoted.",
    "Earlier analyses of {core} disagree on scope; fix the definition first.",
)


def _lines_after(label: str, texts: list[str]) -> list[str]:
    """The rest of every line holding `label` (e.g. "Your part of the plan: Topic: heat pumps"),
    skipping JSON lines (earlier results) and the schema's placeholders."""
    pattern = re.compile(rf"(?:^|\s){re.escape(label)}\s*(\S.*)$", re.IGNORECASE)
    values = []
    for text in texts:
        for line in text.splitlines():
            stripped = line.strip()
            match = pattern.search(stripped)
            if match and not stripped.startswith(("{", "[")) and not match.group(1).startswith("<"):
                values.append(match.group(1).strip())
    return values


def _line_after(label: str, texts: list[str]) -> str | None:
    values = _lines_after(label, texts)
    return values[0] if values else None


def note_answer(body: dict[str, Any]) -> dict[str, Any]:
    users = [t for t in _texts(body, "user") if not t.lstrip().startswith(REPAIR_PREFIX)]
    texts = _texts(body, "system") + users
    request = request_text(body)
    topic = _line_after(TOPIC, texts) or topic_of(request)
    questions = _lines_after(SUB_QUESTION, texts)
    kind = kind_of("\n".join(_texts(body, "system")))
    # If the whole plan is quoted, this researcher's own sub-question is the one of its kind.
    question = next((q for q in questions if kind and q == sub_question(kind, topic)), None)
    question = question or (questions[0] if questions else None)
    if kind is None and question:
        kind = next((k for k in KINDS if _KEYWORD_RES[k].search(question)), None)
    question = question or sub_question(kind or "", topic)
    core = core_of(topic)
    findings = [f.format(core=core) for f in _FINDINGS.get(kind or "", _GENERIC_FINDINGS)]
    mentioned = kind is not None and bool(_KEYWORD_RES[kind].search(request))
    confidence = 0.75 if mentioned else 0.6
    return {"question": clip(question, 500), "findings": findings, "confidence": confidence}


def note_skill(body: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps(note_answer(body)))


# --- the brief writer ---------------------------------------------------------------------------


def _notes(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    notes: list[tuple[str, dict[str, Any]]] = []
    seen: set[str] = set()
    for path, value in earlier_results(body):
        findings = value.get("findings")
        if not isinstance(findings, list) or not findings:
            continue
        key = json.dumps(value, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            notes.append((path, value))
    order = {kind: i for i, kind in enumerate(KINDS)}

    def rank(item: tuple[str, dict[str, Any]]) -> int:
        kind = kind_of(item[0]) or kind_of(str(item[1].get("question", "")))
        return order.get(kind or "", len(KINDS))

    return sorted(notes, key=rank)  # stable: unknown kinds keep the order they came in


def _confidence(note: dict[str, Any]) -> float | None:
    value = note.get("confidence")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def brief_answer(body: dict[str, Any]) -> dict[str, Any]:
    users = [t for t in _texts(body, "user") if not t.lstrip().startswith(REPAIR_PREFIX)]
    topic = _line_after(TOPIC, _texts(body, "system") + users) or topic_of(request_text(body))
    notes = _notes(body)[:7]
    sections: list[dict[str, str]] = []
    open_questions: list[str] = []
    leads: list[str] = []
    for path, note in notes:
        kind = kind_of(path) or kind_of(str(note.get("question", "")))
        question = str(note.get("question") or "").strip()
        heading = f"{kind.title()}: {question}" if kind else (question or path or "Findings")
        findings = [" ".join(str(f).split()) for f in note["findings"] if str(f).strip()]
        confidence = _confidence(note)
        lines = [f"- {f}" for f in findings]
        if confidence is not None:
            lines.append(f"Confidence: {round(confidence * 100)}%.")
        sections.append({"heading": clip(heading, 200), "body": clip("\n".join(lines) or "-", 4000)})
        if findings:
            leads.append(findings[0])
        if question and (confidence is None or confidence < 0.7):
            open_questions.append(clip(f"Confirm with primary sources: {question}", 500))
    if not sections:
        sections = [
            {
                "heading": "Scope",
                "body": f"No research notes reached the writer for {topic}; the brief only states the scope.",
            }
        ]
        open_questions.append(f"Which research on {core_of(topic)} should be commissioned first?")
    summary = f"This brief on {topic} draws on {len(notes)} research note{'s' if len(notes) != 1 else ''}."
    if leads:
        summary += " Key points: " + " ".join(leads)
    summary = clip(summary, 2000 - len(DEMO_NOTE) - 1) + " " + DEMO_NOTE
    title = f"Research brief: {topic[:1].upper()}{topic[1:]}"
    return {
        "title": clip(title, 200),
        "summary": summary,
        "sections": sections,
        "open_questions": open_questions[:10],
    }


def brief_skill(body: dict[str, Any]) -> Reply:
    return Reply(content=json.dumps(brief_answer(body)))


SKILLS: dict[str, Any] = {
    "Plan": plan_skill,
    "ResearchNote": note_skill,
    "ResearchBrief": brief_skill,
}
