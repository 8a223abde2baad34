"""Writes of the generation domain. Modules by topic; import from the module."""
