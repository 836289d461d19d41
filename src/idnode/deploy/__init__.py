"""Deployment helpers: scripts that stand up the services a site runs next to idnode."""
