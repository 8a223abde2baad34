from django.apps import AppConfig
from django.db.models.signals import post_migrate


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review"

    def ready(self) -> None:
        from medsynth_site.roles import role_groups_sync

        # After this app's own permissions exist (auth's handler runs first).
        post_migrate.connect(role_groups_sync, sender=self, dispatch_uid="review.role_groups_sync")
