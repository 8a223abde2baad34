"""The shape of artefact content (ArtefactVersion.content): the fields of a SOAP note.

Every reader of a note (rendering, checks, review screens, dataset import and export)
takes the field names and headings from here.
"""

from __future__ import annotations

# (key, heading) in the order a SOAP note reads.
SOAP_SECTIONS: tuple[tuple[str, str], ...] = (
    ("subjective", "SUBJECTIVE"),
    ("objective", "OBJECTIVE"),
    ("assessment", "ASSESSMENT"),
    ("plan", "PLAN"),
)
# Optional parts of Subjective, rendered as labelled paragraphs under its heading.
SUBJECTIVE_PARTS: tuple[tuple[str, str], ...] = (
    ("chief_complaint", "Chief complaint"),
    ("history_of_present_illness", "History of present illness"),
    ("review_of_systems", "Review of systems"),
)
NOTE_FIELDS: tuple[str, ...] = tuple(key for key, _ in SUBJECTIVE_PARTS) + tuple(key for key, _ in SOAP_SECTIONS)
# How a screen names each field: "Chief complaint", "Subjective", ...
NOTE_FIELD_LABELS: dict[str, str] = dict(SUBJECTIVE_PARTS) | {key: title.capitalize() for key, title in SOAP_SECTIONS}
