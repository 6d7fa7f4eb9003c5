"""Example requests per sample workflow: what intake trains on.

Each workflow definition imports ``EXAMPLES[name]`` as its ``examples``. The held-out set that
measures intake lives in ``tests/intake/heldout.yaml`` and must stay separate from these.
"""

from __future__ import annotations

EXAMPLES: dict[str, list[str]] = {
    "refund_request": [
        "Customer on order ORD-1001 wants a refund of 40 EUR, the parcel arrived damaged.",
        "Please refund order ORD-1002 in full, the customer cancelled.",
        "refund ORD-1187",
        "Hi, a customer emailed us saying the blender they bought (order ORD-1044) stopped working "
        "after two days and they'd like their money back rather than a replacement. Can you process that?",
        "The client returned the jacket from ORD-1310 last week and the warehouse confirmed receipt. "
        "Issue the refund to their card.",
        "Partial refund of $15.99 for ORD-1265, one item was missing from the package.",
        "Customer was charged twice for the same order and wants the duplicate payment reversed.",
        "Order never arrived after three weeks, the buyer is asking to be reimbursed.",
        "Can we give a goodwill refund on ORD-1422? Delivery was 10 days late and she is furious.",
        "Money back request: wrong size shipped on ORD-1077, customer does not want an exchange.",
        "Cancel and reimburse order ORD-1533, it was placed by mistake.",
    ],
    "summary": [
        "Summarise this memo for the leadership team: ...",
        "Can you give me a tl;dr of the following article? Remote work has reshaped how teams "
        "collaborate, and companies are now rethinking office space ...",
        "Summarize the attached meeting notes into five bullet points.",
        "Condense this 3-page report into a one-paragraph executive summary.",
        "I don't have time to read this whole thread, what are the key points?",
        "Give me the gist of this blog post about supply chain resilience.",
        "Make a short summary of the quarterly earnings call transcript below.",
        "Boil these customer interview notes down to the main takeaways.",
        "Please shorten this press release to three sentences for the newsletter.",
        "Recap the minutes from yesterday's board meeting for the people who weren't there.",
        "summary of this text pls",
    ],
    "ticket_triage": [
        "Ticket TCK-2001: the customer cannot log in since the last update.",
        "Triage TCK-2045, user reports the export button throws a 500 error.",
        "New support ticket: 'I was billed for the premium plan but I'm on the free tier.' "
        "Classify it and draft a reply.",
        "Customer wants to change the email address on their account, ticket TCK-2107.",
        "Please handle this ticket: the password reset link expired and the user is locked out.",
        "TCK-2230 user asks us to delete all their personal data under GDPR.",
        "Support request from a user: the mobile app crashes whenever they open settings. "
        "What's the intent and a suggested answer?",
        "Can you triage the incoming ticket about two-factor authentication codes never arriving by SMS?",
        "Ticket from Acme Corp: they want to add three more seats and move to annual billing.",
        "User writes in asking how to export their invoices as CSV, classify it and draft a response.",
        "triage TCK-2311 pls, customer complaining the dashboard is very slow",
    ],
    "contract_review": [
        "Review this supplier agreement before we sign it: ...",
        "Please check the NDA from Globex for anything unusual before legal signs off.",
        "Go through the attached master services agreement and flag risky clauses, "
        "especially liability and indemnity.",
        "Can you review the renewal terms in our SaaS subscription contract? "
        "I think there's an auto-renewal trap.",
        "Extract the key clauses (term, termination, payment, governing law) from this lease agreement.",
        "We received a data processing addendum from a vendor. Does it meet our standards? "
        "It needs legal sign-off.",
        "Redline review needed: the distributor contract caps their liability at 10k, is that acceptable?",
        "contract review for the new employment agreement template",
        "Look over this licensing agreement and tell me the risks in the exclusivity and non-compete sections.",
        "Before Friday's signing, assess the consulting contract for IP ownership and confidentiality issues.",
    ],
    "research_brief": [
        "Write a research brief on the market for heat pumps in Germany.",
        "I need a brief on the competitive landscape for electric scooter sharing in European cities.",
        "Research the current state of solid-state batteries: key players, timelines and risks.",
        "Put together a market overview of plant-based dairy alternatives in North America, "
        "with sizing and trends.",
        "What's the outlook for small modular nuclear reactors? Prepare a research brief for the strategy team.",
        "Investigate how generative AI is being adopted in insurance claims handling and write up the findings.",
        "research brief: vertical farming economics",
        "Compare the main vendors in the customer data platform space and recommend which to shortlist.",
        "Give me a background briefing on EU regulation of AI, including the AI Act timeline "
        "and what it means for us.",
        "Analyse the opportunity for expanding our meal-kit business into Japan: "
        "market size, competitors, regulations.",
        "Do some desk research on trends in B2B payments and write up what you find.",
    ],
}
