"""The near-duplicate index: a MinHash signature of each case's current note and dialogue,
its LSH band keys (what a lookup matches on), and the near-duplicate pairs found. All of
it is derived from the current versions (generation.services.near_duplicates), so it is
refreshed in place, and rebuilt from the stored signatures without hashing text again."""

from __future__ import annotations

from django.db import models

from generation.models.pipeline import ArtefactKind, ArtefactVersion, Case

# The artefacts compared: a scenario is compared within its code by the judge already.
NEAR_DUPLICATE_KINDS = (ArtefactKind.NOTE, ArtefactKind.DIALOGUE)
_KIND_CHOICES = [(kind.value, kind.label) for kind in NEAR_DUPLICATE_KINDS]


class TextSignature(models.Model):
    """The MinHash of one case's current note or dialogue."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="text_signatures")
    kind = models.CharField(max_length=16, choices=_KIND_CHOICES)
    version = models.ForeignKey(ArtefactVersion, on_delete=models.CASCADE, related_name="+")
    # NUM_PERM unsigned 32-bit little-endian hash values (datasketch MinHash.hashvalues, affine32).
    hashvalues = models.BinaryField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "kind"], name="unique_signature_per_case_kind")]

    def __str__(self) -> str:
        return f"{self.kind} signature of case {self.case_id}"


class SignatureBand(models.Model):
    """One LSH band key of a signature: two texts that share a key are compared."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=_KIND_CHOICES)
    key = models.BigIntegerField()

    class Meta:
        indexes = [
            models.Index(fields=["kind", "key"], name="signature_band_lookup"),
            models.Index(fields=["case", "kind"], name="signature_band_case"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} band {self.key} of case {self.case_id}"


class NearDuplicatePair(models.Model):
    """`case` and `other` have near-duplicate notes or dialogues (`kind`); stored in both
    directions, so "the near-duplicates of a case" is one indexed filter."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="near_duplicates")
    other = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=_KIND_CHOICES)
    similarity = models.FloatField(help_text="Estimated Jaccard similarity of the word 3-grams")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["case", "other", "kind"], name="unique_near_duplicate_pair"),
            models.CheckConstraint(condition=~models.Q(case=models.F("other")), name="near_duplicate_not_self"),
        ]
        indexes = [models.Index(fields=["other", "kind"], name="near_duplicate_other")]

    def __str__(self) -> str:
        return f"{self.kind} of case {self.case_id} ~ case {self.other_id} ({self.similarity:.2f})"
