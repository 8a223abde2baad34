"""Near-duplicates at export: the clusters among the pairs an export selects (the index is
generation's, kept up to date as versions are written), and the export's policy for them:
keep every pair and report the clusters, or keep one pair per cluster (the oldest case)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import QuerySet

from generation.models import Case
from generation.selectors import near_duplicate_clusters

KEEP_ALL = "keep_all"
KEEP_ONE = "keep_one"
NEAR_DUPLICATE_POLICIES = (KEEP_ALL, KEEP_ONE)


@dataclass(frozen=True)
class NearDuplicateOutcome:
    """What the policy did: the clusters found among the selected pairs, and those dropped."""

    policy: str
    clusters: tuple[frozenset[int], ...]
    dropped: frozenset[int]

    @property
    def kept_clusters(self) -> list[frozenset[int]]:
        """The clusters among the exported pairs (none under keep_one): the case ids a split
        must keep together."""
        kept = (cluster - self.dropped for cluster in self.clusters)
        return [cluster for cluster in kept if len(cluster) > 1]

    @property
    def pairs_in_clusters(self) -> int:
        return sum(len(cluster) for cluster in self.clusters)

    def card_lines(self) -> list[str]:
        threshold = settings.NEAR_DUPLICATE_THRESHOLD
        lines = [
            "## Near-duplicates",
            "",
            f"Two pairs are near-duplicates when their notes or their dialogues share at least {threshold:.0%} of "
            "their word 3-grams (estimated Jaccard similarity, MinHash), whatever their codes.",
            "",
            f"- Clusters among the selected pairs: {len(self.clusters)} ({self.pairs_in_clusters} pairs)",
        ]
        if self.policy == KEEP_ONE:
            lines.append(f"- Policy: keep one pair per cluster (the oldest); dropped: {len(self.dropped)} pairs")
        else:
            lines.append("- Policy: keep all pairs and report; dropped: 0 pairs")
        return [*lines, ""]


def near_duplicates_policy_apply(*, cases: QuerySet[Case], policy: str) -> tuple[QuerySet[Case], NearDuplicateOutcome]:
    """The cases to export under `policy`, and what it found and dropped."""
    if policy not in NEAR_DUPLICATE_POLICIES:
        raise ValueError(f"unknown near-duplicate policy {policy!r}")
    clusters = tuple(near_duplicate_clusters(case_ids=cases.values_list("id", flat=True)))
    dropped: frozenset[int] = frozenset()
    if policy == KEEP_ONE:
        dropped = frozenset(case_id for cluster in clusters for case_id in sorted(cluster)[1:])
    kept = cases.exclude(pk__in=dropped) if dropped else cases
    return kept, NearDuplicateOutcome(policy=policy, clusters=clusters, dropped=dropped)
