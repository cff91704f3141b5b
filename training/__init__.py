"""Builds, evaluates and versions model bundles from labelled complaints."""
