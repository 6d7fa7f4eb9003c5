"""Demo skills of the contract review sample (deterministic, not an LLM).

* ``ClauseExtraction`` (contract_extractor): splits the contract in the user message at its
  section headings ("7. Liability", "Section 7 - Liability", "## Liability", "LIABILITY"),
  classifies each section by its heading, else by keywords in its text, and finds the parties
  ("between A and B", or lines like "Supplier: A").
* ``RiskAssessment`` (contract_risk): reads the extracted clauses from the previous results
  (``Results so far:``; extracts them itself when there are none) and flags, by rules, what a
  reviewer would: unlimited or uncapped liability, automatic renewal, termination notice over
  90 days, one-sided termination or price changes, long payment terms, a transfer of all
  intellectual property, perpetual confidentiality, missing confidentiality or governing law.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.demo.chat import Reply, clip, user_text
from orchestrator.demo.skills.support import find_result, results_so_far, without_results

KINDS = ("governing_law", "confidentiality", "ip", "liability", "payment", "termination")
KIND_PATTERNS: dict[str, list[str]] = {
    "governing_law": [
        r"\bgoverning law\b", r"\bgoverned by\b", r"\bjurisdiction\b", r"\bcourts? of\b", r"\bapplicable law\b",
    ],
    "confidentiality": [r"\bconfidential", r"\bnon-disclosure\b", r"\bnda\b"],
    "ip": [
        r"\bintellectual property\b", r"\bcopyrights?\b", r"\bpatents?\b", r"\blicen[cs]e", r"\bwork product\b",
        r"\bownership\b",
    ],
    "liability": [r"\bliabilit", r"\bliable\b", r"\bindemni", r"\bdamages\b"],
    "payment": [r"\bpayments?\b", r"\bfees?\b", r"\binvoice", r"\bprices?\b", r"\bpay(able)?\b", r"\bnet \d+\b"],
    "termination": [
        r"\bterminat", r"\brenew", r"\bduration\b", r"\bexpir", r"\bnotice period\b", r"^term\b",
    ],
}  # fmt: skip
_NUMBERED = re.compile(
    r"^\s*(?:#+\s*)?(?P<word>(?:section|clause|article)\s+|§\s*)?(?P<number>\d+(?:\.\d+)*)(?P<mark>[.):])?"
    r"\s+(?P<title>\S.*)$",
    re.IGNORECASE,
)
_MARKDOWN = re.compile(r"^\s*#+\s+(\S.*)$")
_CAPS = re.compile(r"^\s*([A-Z][A-Z &/,'-]{3,60})\s*:?\s*$")
_PARTY_LINE = re.compile(
    r"^\s*(?:party\s+[ab12]|supplier|customer|client|provider|vendor|buyer|seller|licensor|licensee|"
    r"contractor|company)\s*:\s*(.+)$",
    re.IGNORECASE | re.MULTILINE,
)
_DOCUMENT_TITLE = (
    r"\b(AGREEMENT|CONTRACT|TERMS AND CONDITIONS|SCHEDULE|ANNEX|APPENDIX|EXHIBIT)\b"  # a title, not a clause
)
_DURATION = re.compile(
    r"\(?(\d{1,4})\)?\s*(?:calendar\s+|business\s+)?(day|week|month|year)s?\b", re.IGNORECASE
)
_DAYS_PER = {"day": 1, "week": 7, "month": 30, "year": 365}


# --- extraction ------------------------------------------------------------------------------------


def kind_of(text: str, *, heading: bool = False) -> str:
    """The clause kind a heading names, or the kind with most keyword hits in a clause's text."""
    low = text.lower().strip()
    hits = {kind: sum(1 for p in KIND_PATTERNS[kind] if re.search(p, low)) for kind in KINDS}
    if heading:
        return next((kind for kind in KINDS if hits[kind]), "other")
    best = max(KINDS, key=lambda k: (hits[k], -KINDS.index(k)))
    return best if hits[best] else "other"


def _heading(line: str) -> tuple[str, str] | None:
    """(section, title) when the line starts a section."""
    numbered = _NUMBERED.match(line)
    # "7. Liability", "7.2 The ...", "Section 7 Liability" -- but not "30 days after ..." or an address
    if numbered and (numbered["word"] or numbered["mark"] or "." in numbered["number"]):
        return numbered["number"], numbered["title"].strip()
    markdown = _MARKDOWN.match(line)
    if markdown:
        return markdown.group(1).strip(), markdown.group(1).strip()
    caps = _CAPS.match(line)
    if caps and len(caps.group(1).split()) <= 6 and not re.search(_DOCUMENT_TITLE, caps.group(1)):
        return caps.group(1).strip().title(), caps.group(1).strip()
    return None


def split_sections(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """(preamble, [(section, title, text), ...]) of a contract."""
    preamble: list[str] = []
    sections: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        found = _heading(line)
        if found is not None:  # a bare title is not part of the clause's text; a numbered sentence is
            sections.append((found[0], found[1], [] if _title_only(found[1]) else [found[1]]))
        elif sections:
            sections[-1][2].append(line.strip())
        else:
            preamble.append(line.strip())
    joined = [(s, title, " ".join(" ".join(body).split())) for s, title, body in sections]
    return " ".join(" ".join(preamble).split()), joined


def _title_only(title: str) -> bool:
    """A heading like "Liability" (short, no sentence) rather than a numbered paragraph."""
    return len(title.split()) <= 6 and not title.rstrip().endswith((".", ";", ":"))


def find_parties(text: str) -> list[str]:
    parties: list[str] = []
    end = r"\.\s+(?=(?-i:[A-Z#\d]))|\.?\s*\n\s*(?:\n|#)|$"  # a sentence, paragraph or heading ends it
    between = re.search(rf"\bbetween\s+(.+?)(?:{end})", text, re.IGNORECASE | re.DOTALL)
    if between:
        segment = re.sub(r"\([^)]*\)", "", " ".join(between.group(1).split()))
        for part in re.split(r"\s+and\s+", segment, maxsplit=1):
            name = part.split(",")[0].strip(" \"'“”")
            if name:
                parties.append(clip(name, 120))
    for match in _PARTY_LINE.finditer(text):
        parties.append(clip(match.group(1).split(",")[0].strip(" \"'“”"), 120))
    unique = list(dict.fromkeys(p for p in parties if p))
    return unique[:10]


def extract(text: str) -> dict[str, Any]:
    """The parties and clauses of a contract text."""
    _, sections = split_sections(text)
    clauses: list[dict[str, Any]] = []
    parent_kind: dict[str, str] = {}
    for section, title, body in sections:
        kind = kind_of(title, heading=True) if _title_only(title) else "other"
        if kind == "other":
            kind = kind_of(body)
        top = section.split(".")[0]
        if kind == "other" and "." in section:
            kind = parent_kind.get(top, "other")  # "7.2 ..." under "7. Liability"
        parent_kind.setdefault(top, kind)
        if not body:
            continue  # a bare heading; its numbered paragraphs follow as their own sections
        clauses.append({"kind": kind, "text": clip(body, 2000), "section": clip(section, 200)})
    if not sections:  # no headings: classify sentence by sentence
        for number, sentence in enumerate(re.split(r"(?<=[.;])\s+", " ".join(text.split())), start=1):
            kind = kind_of(sentence)
            if kind != "other":
                clauses.append({"kind": kind, "text": clip(sentence, 2000), "section": str(number)})
    return {"parties": find_parties(text), "clauses": clauses[:60]}


def extraction_skill(body: dict[str, Any]) -> Reply:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    return Reply(content=json.dumps(extract(without_results(user_text(messages)))))


# --- risks ----------------------------------------------------------------------------------------

_UNLIMITED = (
    r"\bunlimited\b|\bwithout (any )?limit|\bno (cap|limit)\b|\bnot be (limited|capped)\b|\buncapped\b"
)
_CAP = r"\blimited to\b|\bshall not exceed\b|\bcap(ped)?\b|\bmaximum aggregate\b|\bin no event\b"
_AUTO_RENEW = r"\bautomatic(ally)? renew|\bauto-?renew|\brenews? automatically\b|\btacit(ly)? renew"
_ONE_SIDED = r"\bat (its|their) sole discretion\b|\bat any time (and )?for any reason\b|\bwithout cause\b"
_PRICE_CHANGE = r"\b(may|can|reserves the right to) (increase|change|adjust) (the )?(prices?|fees?)\b"
_IP_TRANSFER = r"\b(assigns?|transfers?)\b.*\b(all|any)\b.*\b(intellectual property|work product|rights)\b"
_PERPETUAL = r"\bperpetu|\bindefinite|\bwithout time limit\b"
_PAY_TERM = re.compile(r"\bnet\s*(\d{1,3})\b|\bwithin\s+\(?(\d{1,3})\)?\s*days\b", re.IGNORECASE)
RANK = {"low": 1, "medium": 2, "high": 3}
NO_CLAUSES = "No clauses found: the contract text seems to be missing."


def notice_days(text: str) -> int:
    """The longest notice period a clause names, in days (0 when it names none)."""
    if "notice" not in text.lower():
        return 0
    return max((int(n) * _DAYS_PER[unit.lower()] for n, unit in _DURATION.findall(text)), default=0)


def _clause_flags(kind: str, text: str) -> list[tuple[str, str, str]]:
    low, flags = text.lower(), []
    if re.search(_UNLIMITED, low) and re.search(r"\bliab|\bindemn", low):
        flags.append(("liability", "high", "Unlimited liability: exposure is not capped."))
    elif kind == "liability" and not re.search(_CAP, low):
        flags.append(("liability", "medium", "No cap on liability is stated."))
    if re.search(r"\bindemni", low) and re.search(r"\bany and all\b", low):
        flags.append(("liability", "medium", "Broad indemnity for any and all claims."))
    if re.search(_AUTO_RENEW, low):
        flags.append(("termination", "medium", "Automatic renewal: the contract renews unless cancelled."))
    days = notice_days(text) if kind == "termination" or "terminat" in low else 0
    if days > 90:
        severity = "high" if days > 180 else "medium"
        flags.append(("termination", severity, f"Termination notice of {days} days (over 90 days)."))
    if re.search(_ONE_SIDED, low) and "terminat" in low:
        flags.append(("termination", "medium", "One-sided right to terminate without cause."))
    if re.search(_PRICE_CHANGE, low):
        flags.append(("payment", "medium", "The other party may change prices unilaterally."))
    if kind == "payment":
        terms = [int(a or b) for a, b in _PAY_TERM.findall(text)]
        if terms and max(terms) > 60:
            flags.append(("payment", "low", f"Long payment term of {max(terms)} days."))
        if "non-refundable" in low:
            flags.append(("payment", "low", "Fees are non-refundable."))
    if re.search(_IP_TRANSFER, low):
        flags.append(("ip", "medium", "Transfer of all intellectual property rights."))
    if kind == "confidentiality" and re.search(_PERPETUAL, low):
        flags.append(("confidentiality", "low", "Confidentiality obligations without end date."))
    return flags


def assess(extraction: dict[str, Any]) -> dict[str, Any]:
    """The risk assessment of extracted clauses."""
    clauses = [c for c in extraction.get("clauses") or [] if isinstance(c, dict)]
    if not clauses:
        return {
            "risk_level": "medium",
            "flags": [{"clause_kind": "other", "severity": "medium", "reason": NO_CLAUSES}],
            "recommendation": "Attach the full contract text and run the review again; "
            "there is nothing to sign off yet.",
        }
    found: list[tuple[str, str, str]] = []
    for clause in clauses:
        found.extend(_clause_flags(str(clause.get("kind", "other")), str(clause.get("text", ""))))
    kinds = {str(c.get("kind")) for c in clauses}
    if "confidentiality" not in kinds:
        found.append(("confidentiality", "medium", "No confidentiality clause."))
    if "governing_law" not in kinds:
        found.append(("governing_law", "low", "No governing law or jurisdiction clause."))
    flags = [
        {"clause_kind": kind, "severity": severity, "reason": reason}
        for kind, severity, reason in dict.fromkeys(found)
    ][:30]
    level = max((f["severity"] for f in flags), key=RANK.__getitem__, default="low")
    top = [f["reason"] for f in flags if f["severity"] == level]
    if not flags:
        advice = "No material risks found; acceptable to sign on these terms."
    elif level == "high":
        advice = "Do not sign as drafted. Negotiate first: " + " ".join(top)
    elif level == "medium":
        advice = "Sign only after negotiating: " + " ".join(top)
    else:
        advice = "Acceptable to sign; note: " + " ".join(top)
    return {"risk_level": level, "flags": flags, "recommendation": clip(advice, 2000)}


def risk_skill(body: dict[str, Any]) -> Reply:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    text = user_text(messages)
    extraction = find_result(results_so_far(text), {"clauses"}, prefer="extract")
    if extraction is None:
        extraction = extract(without_results(text))
    return Reply(content=json.dumps(assess(extraction)))


SKILLS: dict[str, Any] = {"ClauseExtraction": extraction_skill, "RiskAssessment": risk_skill}
