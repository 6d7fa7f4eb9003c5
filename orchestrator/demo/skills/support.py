"""Demo skills of the support ticket triage sample (deterministic, not an LLM).

* ``TriageResult`` (support_triage): reads the ticket with ``lookup_ticket`` when the request
  names one (TCK-…), then classifies it by keywords. The small model (``demo-slm``) is honest
  about its limits: a vague ticket, or one that mixes topics, gets a low confidence (0.4), which
  sends the step up the escalation ladder; any larger model answers with high confidence.
  Privacy requests and legal threats are ``regulated``.
* ``DraftReply`` (support_writer): a reply built from the triage result, which the engine passes
  in the user message after a line ``Results so far:`` (JSON keyed by step name).

:func:`results_so_far` and :func:`find_result` read those previous results defensively; the
contract skills use them too.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orchestrator.demo.chat import (
    Reply,
    call_id,
    clip,
    is_failure,
    last_result,
    offered_tools,
    sentences,
    tool_history,
    user_text,
)

LOOKUP_TICKET = "lookup_ticket"
RESULT_MARKERS = ("Results so far:", "Result of the previous step:")
# What the engine appends after the request: earlier results, a plan assignment, a retry note.
APPENDED_MARKERS = (*RESULT_MARKERS, "Your part of the plan:", "An earlier attempt was not accepted")
LOW_CONFIDENCE = 0.4
_TICKET_RE = re.compile(r"\bTCK-\d{3,8}\b")

# Keyword patterns per intent, matched on lower-cased text. Order = priority on ties.
INTENT_PATTERNS: dict[str, list[str]] = {
    "privacy": [
        r"\bgdpr\b", r"\bpersonal (data|information)\b", r"\bdata (deletion|erasure|protection)\b",
        r"\berase\b", r"\berasure\b", r"\bright to be forgotten\b", r"\bdsar\b", r"\bsubject access\b",
        r"\bprivacy\b", r"\bdelete (all )?(my|our) (personal )?data\b",
    ],
    "billing": [
        r"\bcharged?\b", r"\bcharges\b", r"\binvoices?\b", r"\bbill(ed|ing)?\b", r"\bpayments?\b",
        r"\brefunds?\b", r"\bcredit card\b", r"\bdebited\b", r"\bvat\b",
    ],
    "login": [
        r"\blog ?in\b", r"\blogin\b", r"\bsign(ed)? ?in\b", r"\bpassword\b", r"\b2fa\b",
        r"\btwo-factor\b", r"\blocked out\b", r"\bsso\b", r"\breset link\b", r"\bauthenticat",
    ],
    "bug": [
        r"\berrors?\b", r"\bcrash(es|ed|ing)?\b", r"\bbugs?\b", r"\bexceptions?\b", r"\bfail(s|ed|ing)?\b",
        r"\bbroken\b", r"\bfreez(es|ing)\b", r"\bstack ?trace\b",
    ],
    "account": [
        r"\bupgrade\b", r"\bdowngrade\b", r"\bplan\b", r"\bseats?\b", r"\bteam members?\b",
        r"\badd (more )?users\b", r"\bchange (my|the|our) (e-?mail|address|company name)\b",
        r"\baccount settings\b",
    ],
}  # fmt: skip
LEGAL_PATTERNS = [
    r"\blawyers?\b", r"\battorneys?\b", r"\bsolicitors?\b", r"\blegal action\b", r"\blawsuit\b",
    r"\bsue\b", r"\bcourt\b", r"\bombudsman\b", r"\bregulator\b", r"\bdata protection authority\b",
]  # fmt: skip
LABELS = {
    "login": "Login problem",
    "billing": "Billing question",
    "bug": "Bug report",
    "account": "Account change",
    "privacy": "Privacy request",
    "other": "Unclear request",
}


# --- reading the request ---------------------------------------------------------------------------


def results_so_far(text: str) -> dict[str, Any]:
    """The JSON object after the last ``Results so far:`` (or older ``Result of the previous step:``)."""
    for marker in RESULT_MARKERS:
        at = text.rfind(marker)
        start = text.find("{", at) if at >= 0 else -1
        if start < 0:
            continue
        try:
            value, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def find_result(results: Any, keys: set[str], prefer: str = "", depth: int = 0) -> dict[str, Any] | None:
    """The first object in ``results`` (itself, the entry ``prefer``, or nested) holding all ``keys``."""
    if not isinstance(results, dict) or depth > 3:
        return None
    if keys <= set(results):
        return results
    values = list(results.values())
    if isinstance(results.get(prefer), dict):
        values.insert(0, results[prefer])
    for value in values:
        found = find_result(value, keys, prefer, depth + 1)
        if found is not None:
            return found
    return None


def without_results(text: str) -> str:
    """The request text without what the engine appended (earlier results, notes)."""
    cut = min((i for i in (text.find(m) for m in APPENDED_MARKERS) if i >= 0), default=len(text))
    return text[:cut].strip()


def is_small_model(body: dict[str, Any]) -> bool:
    return "slm" in str(body.get("model", "")).lower()


# --- triage ------------------------------------------------------------------------------------------


def intent_hits(text: str) -> dict[str, int]:
    """How many keyword patterns of each intent the text matches (only intents with a hit)."""
    low = text.lower()
    hits = {
        intent: sum(1 for p in patterns if re.search(p, low)) for intent, patterns in INTENT_PATTERNS.items()
    }
    return {intent: n for intent, n in hits.items() if n}


def is_regulated(text: str, intent: str) -> bool:
    low = text.lower()
    return intent == "privacy" or any(re.search(p, low) for p in LEGAL_PATTERNS)


def triage(text: str, *, small: bool, ticket_id: str = "", customer: str = "") -> dict[str, Any]:
    """The triage answer for a ticket text, as the small or a larger demo model gives it."""
    hits = intent_hits(text)
    order = list(INTENT_PATTERNS)
    ranked = sorted(hits, key=lambda i: (-hits[i], order.index(i)))
    intent = ranked[0] if ranked else "other"
    mixed = len(ranked) > 1
    if small:
        confidence = LOW_CONFIDENCE if (mixed or not ranked) else 0.86
    else:
        confidence = 0.8 if not ranked else (0.85 if mixed else 0.95)
    gist = clip(" ".join(sentences(text)[:2]) or "No text was given.", 300)
    summary = f"{LABELS[intent]}: {gist}"
    if mixed and not small:
        summary += f" Also mentions: {', '.join(ranked[1:])}."
    return {
        "ticket_id": ticket_id,
        "intent": intent,
        "confidence": confidence,
        "regulated": is_regulated(text, intent),
        "summary": clip(summary, 500),
        "customer": clip(customer, 200),
    }


def triage_skill(body: dict[str, Any]) -> Reply:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    text = without_results(user_text(messages))
    lookup = last_result(tool_history(messages), LOOKUP_TICKET)
    match = _TICKET_RE.search(text)
    ticket_id = str((lookup[1].get("ticket_id") if lookup else None) or (match.group(0) if match else ""))
    offered = next((t for t in offered_tools(body) if t.startswith(LOOKUP_TICKET)), None)
    if ticket_id and lookup is None and offered is not None:
        args = json.dumps({"ticket_id": ticket_id})
        return Reply(tool_calls=[{"id": call_id(messages, 0), "name": offered, "arguments": args}])
    customer = ""
    if lookup is not None and not is_failure(lookup[2]):
        ticket = lookup[2]
        customer = str(ticket.get("customer") or "")
        text = f"{ticket.get('subject', '')}. {ticket.get('body', '')}\n{text}".strip(" .\n")
    answer = triage(text, small=is_small_model(body), ticket_id=ticket_id, customer=customer)
    return Reply(content=json.dumps(answer))


# --- the reply -------------------------------------------------------------------------------------

SUBJECTS = {
    "login": "Getting you signed in again",
    "billing": "About the charge on your account",
    "bug": "Thank you for the bug report",
    "account": "Changing your plan",
    "privacy": "Your request about your personal data",
    "other": "A few details so we can help",
}
BODIES = {
    "login": (
        'Thank you for reaching out about signing in. Please use "Forgot password" on the login page '
        "and open the new link within 30 minutes; older links stop working after an update. If your "
        "company uses single sign-on, sign in through your company portal instead. If it still fails, "
        "reply with the time of your last attempt and we will check our logs."
    ),
    "billing": (
        "Thank you for letting us know about the charge. Our billing team is checking the payments on "
        "your account. If a payment was taken twice, the duplicate is refunded to the original payment "
        "method, which usually takes 5 to 10 business days. We will confirm by e-mail once it is done."
    ),
    "bug": (
        "Thank you for the report. We have passed the details to our engineering team and will update "
        "you as soon as there is a fix or a workaround. If you can, reply with the steps that lead to "
        "the problem and a screenshot of the error message."
    ),
    "account": (
        "Thank you for your message. You can change your plan and the number of seats under Settings > "
        "Billing > Plan; the change applies immediately and is prorated on your next invoice. If you "
        "prefer, reply to this e-mail and we will make the change for you."
    ),
    "privacy": (
        "We have received your request about your personal data. We will handle it under the GDPR and "
        "answer within one month of receipt, as the law requires. To protect your data we may first ask "
        "you to confirm your identity. Our data protection officer has been informed of your request."
    ),
    "other": (
        "Thank you for contacting us. So that we can help you quickly, could you tell us a little more: "
        "what you were trying to do, what happened instead, and since when? Screenshots help too."
    ),
}
LEGAL_NOTE = "Your message has also been passed to our legal team, who will contact you if needed."


def draft(result: dict[str, Any]) -> dict[str, Any]:
    """The reply to a triaged ticket."""
    intent = str(result.get("intent") or "other")
    intent = intent if intent in BODIES else "other"
    ticket_id = str(result.get("ticket_id") or "")
    first_name = str(result.get("customer") or "").split(" ")[0]
    body = f"Hello {first_name}," if first_name else "Hello,"
    body += "\n\n" + BODIES[intent]
    if result.get("regulated") and intent != "privacy":
        body += " " + LEGAL_NOTE
    body += "\n\nBest regards,\nCustomer Support"
    subject = f"[{ticket_id}] {SUBJECTS[intent]}" if ticket_id else SUBJECTS[intent]
    return {"subject": subject, "body": body, "confidence": 0.6 if intent == "other" else 0.85}


def draft_skill(body: dict[str, Any]) -> Reply:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    text = user_text(messages)
    result = find_result(results_so_far(text), {"intent"}, prefer="triage")
    if result is None:  # no triage result passed in: triage the request itself
        request = without_results(text)
        match = _TICKET_RE.search(request)
        result = triage(request, small=False, ticket_id=match.group(0) if match else "")
    return Reply(content=json.dumps(draft(result)))


SKILLS: dict[str, Any] = {"TriageResult": triage_skill, "DraftReply": draft_skill}
