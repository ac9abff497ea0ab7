"""The operator CLI: create, populate, start and watch campaigns."""
