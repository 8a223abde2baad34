"""Admin dashboards: the figures (selectors), their catalogue (figures) and their filters."""
